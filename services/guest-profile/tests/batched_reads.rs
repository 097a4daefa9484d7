//! GetGuest reads are answered and logged a batch at a time (one statement for many
//! callers). Callers with different scopes, reading guests they may and may not see and
//! merged ids, all at once: each must get the answer it would get alone, and the access
//! log must hold exactly the reads that answered.

mod common;

use common::*;
use guestloop_auth::Role;
use guestloop_proto::guestprofile::v1 as pb;
use std::collections::BTreeMap;
use tonic::Code;

#[tokio::test]
async fn concurrent_reads_by_different_scopes_answer_and_log_as_if_alone() {
    let app = TestApp::spawn().await;
    // A lives at sh-bund; B at hk-harbour with a stay at sh-bund; C at hk-harbour only;
    // M was merged into A.
    let a = app.create_guest("sh-bund", guest()).await;
    let b = app
        .create_guest("hk-harbour", guest_named("Na", "Li"))
        .await;
    app.upsert_stay(stay(&b.guest_id, "sh-bund", "R-B-1")).await;
    let c = app
        .create_guest("hk-harbour", guest_named("Mei", "Chan"))
        .await;
    let m = app
        .create_guest("sh-bund", guest_named("Wei", "Zhang"))
        .await;
    app.head_office()
        .merge_guests(pb::MergeGuestsRequest {
            survivor_guest_id: a.guest_id.clone(),
            duplicate_guest_id: m.guest_id.clone(),
            reason: "same guest".into(),
        })
        .await
        .unwrap();
    let missing = uuid::Uuid::new_v4().to_string();

    let callers = [
        (
            "alice",
            token_as("alice", Role::PropertyStaff, &["sh-bund"], None),
        ),
        (
            "carol",
            token_as("carol", Role::PropertyStaff, &["hk-harbour"], None),
        ),
        (
            "bob",
            token_as("bob", Role::RegionalManager, &[], Some("east")),
        ),
        ("hq", token_as("hq", Role::HeadOffice, &[], None)),
    ];
    // (caller, guest asked for, the guest answered or None for NOT_FOUND, merged from)
    let table: Vec<(&str, &str, Option<&str>, bool)> = vec![
        ("alice", &a.guest_id, Some(&a.guest_id), false),
        ("alice", &b.guest_id, Some(&b.guest_id), false),
        ("alice", &c.guest_id, None, false),
        ("alice", &m.guest_id, Some(&a.guest_id), true),
        ("alice", &missing, None, false),
        ("carol", &a.guest_id, None, false),
        ("carol", &b.guest_id, Some(&b.guest_id), false),
        ("carol", &c.guest_id, Some(&c.guest_id), false),
        ("carol", &m.guest_id, None, false),
        ("bob", &a.guest_id, Some(&a.guest_id), false),
        ("bob", &b.guest_id, Some(&b.guest_id), false),
        ("bob", &c.guest_id, None, false),
        ("hq", &c.guest_id, Some(&c.guest_id), false),
        ("hq", &m.guest_id, Some(&a.guest_id), true),
        ("hq", &missing, None, false),
    ];
    const ROUNDS: usize = 6;
    let calls = (0..ROUNDS)
        .flat_map(|_| table.iter())
        .map(|(who, asked, _, _)| {
            let token = &callers.iter().find(|(name, _)| name == who).unwrap().1;
            let mut client = app.client(token);
            let asked = asked.to_string();
            tokio::spawn(async move {
                client
                    .get_guest(pb::GetGuestRequest { guest_id: asked })
                    .await
                    .map(|r| r.into_inner())
            })
        });
    let mut answers = Vec::new();
    for call in calls.collect::<Vec<_>>() {
        answers.push(call.await.unwrap());
    }

    // guest id → (caller, role) of every read that answered, to compare with the log.
    let mut expected_log: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (i, answer) in answers.into_iter().enumerate() {
        let (who, asked, answered, merged) = table[i % table.len()];
        match (answered, answer) {
            (Some(id), Ok(r)) => {
                assert_eq!(r.guest.unwrap().guest_id, id, "{who} reading {asked}");
                let from = if merged { asked } else { "" };
                assert_eq!(r.merged_from_guest_id, from, "{who} reading {asked}");
                let role = if who == "hq" {
                    "head_office"
                } else if who == "bob" {
                    "regional_manager"
                } else {
                    "property_staff"
                };
                expected_log
                    .entry(id.to_string())
                    .or_default()
                    .push((who.to_string(), role.to_string()));
            }
            (None, Err(status)) => assert_eq!(status.code(), Code::NotFound, "{who}: {asked}"),
            (want, got) => panic!("{who} reading {asked}: wanted {want:?}, got {got:?}"),
        }
    }
    for g in [&a, &b, &c, &m] {
        let mut logged: Vec<(String, String)> = app
            .access_log(&g.guest_id)
            .await
            .into_iter()
            // The merge itself read both guests.
            .filter(|(_, _, rpc)| !rpc.ends_with("/MergeGuests"))
            .map(|(who, role, _)| (who, role))
            .collect();
        logged.sort();
        let mut want = expected_log.remove(&g.guest_id).unwrap_or_default();
        want.sort();
        assert_eq!(logged, want, "access log of {}", g.guest_id);
    }
}
