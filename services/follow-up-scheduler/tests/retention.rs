//! Retention of what staff wrote on follow-up tasks (issue 11): a finished task due more
//! than its region's `retention.case_notes` ago loses title, instructions and outcome note;
//! an open one, another region's and a recent one keep theirs.

mod common;

use chrono::{Duration, Utc};
use common::*;
use guestloop_proto::followup::v1 as pb;
use std::time::Instant;

async fn task(app: &TestApp, property: &str, title: &str) -> pb::FollowUpTask {
    app.head_office()
        .create_task(pb::CreateTaskRequest {
            task: Some(pb::FollowUpTask {
                kind: pb::TaskKind::ComplaintCallback as i32,
                property_id: property.into(),
                title: title.into(),
                instructions: "Ask about the wombat lamp".into(),
                guest_id: format!("guest-{}", next()),
                due_time: Some(ts(Utc::now() + Duration::hours(1))),
                ..Default::default()
            }),
            idempotency_key: format!("k-{}", next()),
        })
        .await
        .unwrap()
        .into_inner()
        .task
        .unwrap()
}

async fn complete(app: &TestApp, t: &pb::FollowUpTask) {
    app.head_office()
        .complete_task(pb::CompleteTaskRequest {
            task_id: t.task_id.clone(),
            outcome: pb::TaskOutcome::GuestSatisfied as i32,
            outcome_note: "Mr Wombat was happy".into(),
            ..Default::default()
        })
        .await
        .unwrap();
}

async fn get(app: &TestApp, t: &pb::FollowUpTask) -> pb::FollowUpTask {
    app.head_office()
        .get_task(pb::GetTaskRequest {
            task_id: t.task_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .task
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_tasks_lose_staffs_words_by_region() {
    let mut app = TestApp::spawn(false).await;
    app.start(
        false,
        "[retention]\ninterval = \"100ms\"\n[retention.regions.east]\ncase_notes = \"2d\"\n",
    )
    .await;
    let done_east = task(&app, "sh-bund", "Call Mr Wombat back").await;
    let open_east = task(&app, "sh-bund", "Call Ms Numbat back").await;
    let done_south = task(&app, "hk-harbour", "Call Mr Quokka back").await;
    let recent_east = task(&app, "sh-bund", "Call Mrs Bilby back").await;
    for t in [&done_east, &done_south, &recent_east] {
        complete(&app, t).await;
    }
    let old: Vec<uuid::Uuid> = [&done_east, &open_east, &done_south]
        .iter()
        .map(|t| t.task_id.parse().unwrap())
        .collect();
    sqlx::query("UPDATE tasks SET due_time = due_time - interval '3 days' WHERE id = ANY($1)")
        .bind(&old)
        .execute(&app.pool)
        .await
        .unwrap();
    let start = Instant::now();
    let erased = loop {
        let t = get(&app, &done_east).await;
        if t.title == "[erased]" {
            break t;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(15),
            "{t:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(
        (erased.instructions.as_str(), erased.outcome_note.as_str()),
        ("", "")
    );
    assert_eq!(erased.status, pb::TaskStatus::Completed as i32);
    assert_eq!(erased.outcome, pb::TaskOutcome::GuestSatisfied as i32);
    for (t, title) in [
        (&open_east, "Call Ms Numbat back"),
        (&done_south, "Call Mr Quokka back"),
        (&recent_east, "Call Mrs Bilby back"),
    ] {
        assert_eq!(get(&app, t).await.title, title);
    }
}
