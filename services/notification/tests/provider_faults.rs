//! R4: the providers misbehave under a steady stream of messages. The HTTP provider (SMS)
//! answers 500, takes a message but answers after the send timeout, hangs, or is down; the
//! SMTP server hangs before its greeting or refuses connections. Time is compressed by
//! configuration (300 ms send timeout, 50–300 ms backoff). Checked at the real sinks: every
//! acknowledged message ends SENT (or DEAD_LETTERED after its budget, and then a retry
//! delivers it), each is taken by its provider exactly once, and every attempt carries the
//! message id as the provider's idempotency key — which is what keeps a retry after a
//! lost answer from becoming a second SMS.

mod common;

use common::*;
use guestloop_proto::common::v1 as c;
use guestloop_proto::notification::v1 as pb;
use pb::AttemptOutcome as A;
use pb::DeliveryStatus as S;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU16, Ordering};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

/// Delivery settings with time compressed: a send gives up after 300 ms, retries wait
/// 50–300 ms, and a message has `attempts` tries.
fn compressed(attempts: u32, smtp_port: u16) -> String {
    format!(
        "[delivery]\nsend_timeout = \"300ms\"\nlease = \"2s\"\nbackoff_base = \"50ms\"\n\
         backoff_max = \"300ms\"\nmax_attempts = {attempts}\nbatch_size = 50\n\
         [providers.smtp]\nport = {smtp_port}\n"
    )
}

const FORWARD: u8 = 0;
const HANG: u8 = 1;
const REFUSE: u8 = 2;

/// A TCP switch in front of the SMTP sink: forwards, holds connections without a word
/// (a server that hangs before its greeting), or closes them at once.
struct SmtpSwitch {
    port: u16,
    mode: Arc<AtomicU8>,
    upstream: Arc<AtomicU16>,
}

impl SmtpSwitch {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(FORWARD));
        let upstream = Arc::new(AtomicU16::new(0));
        let (m, u) = (mode.clone(), upstream.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                let (mode, upstream) = (m.load(Ordering::SeqCst), u.load(Ordering::SeqCst));
                tokio::spawn(async move {
                    match mode {
                        FORWARD => {
                            if let Ok(mut server) =
                                TcpStream::connect(("127.0.0.1", upstream)).await
                            {
                                let _ =
                                    tokio::io::copy_bidirectional(&mut client, &mut server).await;
                            }
                        }
                        HANG => {
                            tokio::time::sleep(Duration::from_secs(60)).await;
                            drop(client);
                        }
                        _ => drop(client),
                    }
                });
            }
        });
        Self {
            port,
            mode,
            upstream,
        }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }
}

/// Every message ends in one of `statuses` (polled, `within` at most).
async fn settle(
    app: &TestApp,
    ids: &[String],
    statuses: &[S],
    within: Duration,
) -> Vec<pb::OutboundMessage> {
    let started = Instant::now();
    let mut done = Vec::new();
    for id in ids {
        loop {
            let m = app.get(id).await;
            if statuses.iter().any(|s| *s as i32 == m.status) {
                done.push(m);
                break;
            }
            assert!(
                started.elapsed() < within,
                "message {id} stuck at {:?} after {:?}: {m:?}",
                S::try_from(m.status),
                started.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    done
}

/// What the HTTP provider saw, per idempotency key: (times taken, replays, first answer).
fn http_takes(app: &TestApp) -> BTreeMap<String, (u32, u32, String)> {
    let mut by_key: BTreeMap<String, (u32, u32, String)> = BTreeMap::new();
    for r in app.http.requests() {
        let key = r["key"].as_str().unwrap().to_string();
        let body: serde_json::Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
        // The key is always there, and it is the message the body is about.
        assert_eq!(key, body["ref"], "request without its idempotency key: {r}");
        let e = by_key.entry(key).or_default();
        if r["status"] == 200 {
            if r["replay"] == true {
                e.1 += 1;
            } else {
                e.0 += 1;
                e.2 = r["answer"]["message_id"].as_str().unwrap().to_string();
            }
        }
    }
    by_key
}

/// Mails the SMTP sink accepted, per Message-ID.
fn mails_by_id(app: &TestApp) -> HashMap<String, u32> {
    let mut out = HashMap::new();
    for m in app.smtp.mails() {
        *out.entry(m["message_id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    out
}

#[tokio::test]
async fn every_message_is_taken_once_through_errors_timeouts_and_hangs() {
    let switch = SmtpSwitch::start().await;
    let app = TestApp::spawn_with(Options {
        worker: true,
        extra_toml: compressed(60, switch.port),
        ..Default::default()
    })
    .await;
    switch.upstream.store(app.smtp.port, Ordering::SeqCst);
    let sms_guest = app
        .guest("sh-bund", "", "zh-CN", &[c::ContactChannel::Sms])
        .await;
    let mail_guest = app
        .guest(
            "sh-bund",
            "r4@example.com",
            "en",
            &[c::ContactChannel::Email],
        )
        .await;

    // A steady stream of messages, alternating SMS and email, while the providers change
    // every `phase`.
    let phase = Duration::from_millis(750) * guestloop_testkit::fault_scale();
    let sender = {
        let client = app.head_office();
        let (sms_guest, mail_guest) = (sms_guest.clone(), mail_guest.clone());
        tokio::spawn(async move {
            let mut ids = Vec::new();
            let started = Instant::now();
            let mut n = 0;
            while started.elapsed() < phase * 6 {
                let guest = if n % 2 == 0 { &sms_guest } else { &mail_guest };
                let m = client
                    .clone()
                    .send_message(send_req(&key(), survey(guest, "sh-bund")))
                    .await
                    .expect("send accepted")
                    .into_inner()
                    .message
                    .unwrap();
                ids.push((m.message_id, n % 2 == 0));
                n += 1;
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
            ids
        })
    };
    // 0.75 s fine, then: 500s; taken-but-slow; hanging; SMTP hanging; SMTP refusing; fine.
    let phases: [(&str, u8); 6] = [
        ("ok", FORWARD),
        ("error", FORWARD),
        ("slow", FORWARD),
        ("hang", HANG),
        ("ok", REFUSE),
        ("ok", FORWARD),
    ];
    for (http, smtp) in phases {
        app.http.set_mode(http);
        switch.set(smtp);
        tokio::time::sleep(phase).await;
    }
    let ids = sender.await.unwrap();
    let all: Vec<String> = ids.iter().map(|(id, _)| id.clone()).collect();
    let messages = settle(&app, &all, &[S::Sent], Duration::from_secs(40)).await;

    // At the HTTP provider: each SMS taken exactly once, and the answer it gave is what
    // notification recorded — even when that answer first reached it on a retry.
    let takes = http_takes(&app);
    let mails = mails_by_id(&app);
    let (mut replays, mut timeouts, mut temporaries) = (0, 0, 0);
    for (m, (_, sms)) in messages.iter().zip(&ids) {
        for a in &m.attempts {
            timeouts += u32::from(a.outcome == A::Timeout as i32);
            temporaries += u32::from(a.outcome == A::TemporaryError as i32);
        }
        if *sms {
            let (taken, replayed, answer) = takes
                .get(&m.message_id)
                .unwrap_or_else(|| panic!("{} never reached the provider", m.message_id));
            assert_eq!(*taken, 1, "SMS {} taken {taken} times", m.message_id);
            assert_eq!(m.provider_message_id, *answer);
            replays += replayed;
        } else {
            let mid = format!("<{}@guestloop>", m.message_id);
            assert_eq!(mails.get(&mid), Some(&1), "mail {mid}");
        }
    }
    assert_eq!(mails.len(), ids.iter().filter(|(_, sms)| !sms).count());
    // The faults did happen: timeouts (slow, hang), errors (500, refused), and retries of
    // messages the provider already had, answered from its idempotency record.
    assert!(timeouts > 0 && temporaries > 0, "{timeouts} {temporaries}");
    assert!(
        replays > 0,
        "no retry of a message the provider had already taken"
    );
    eprintln!(
        "numbers: R4 {} messages ({} SMS), all SENT once; {} attempts timed out, {} temporary \
         errors, {} retries answered from the provider's idempotency record; {} HTTP requests",
        ids.len(),
        ids.iter().filter(|(_, sms)| *sms).count(),
        timeouts,
        temporaries,
        replays,
        app.http.requests().len()
    );
}

#[tokio::test]
async fn a_long_outage_dead_letters_and_a_retry_after_it_delivers_once() {
    let switch = SmtpSwitch::start().await;
    let mut app = TestApp::spawn_with(Options {
        worker: true,
        extra_toml: compressed(4, switch.port),
        ..Default::default()
    })
    .await;
    switch.upstream.store(app.smtp.port, Ordering::SeqCst);
    let sms_guest = app
        .guest("hz-lake", "", "zh-CN", &[c::ContactChannel::Sms])
        .await;
    let mail_guest = app
        .guest(
            "hz-lake",
            "long@example.com",
            "en",
            &[c::ContactChannel::Email],
        )
        .await;
    // Both providers down for longer than a message's whole attempt budget.
    app.http.stop();
    app.smtp.stop();
    let mut ids = Vec::new();
    for n in 0..20 {
        let guest = if n % 2 == 0 { &sms_guest } else { &mail_guest };
        let m = app.send(send_req(&key(), survey(guest, "hz-lake"))).await;
        ids.push(m.message.unwrap().message_id);
    }
    let dead = settle(&app, &ids, &[S::DeadLettered], Duration::from_secs(20)).await;
    for m in &dead {
        assert_eq!(m.attempt_count, 4);
        assert!(
            ["http_connection", "smtp_connection"].contains(&m.last_error.as_str()),
            "{}",
            m.last_error
        );
    }

    // Back at the same addresses; the dead letters are retried by staff.
    app.http.start_again();
    app.smtp.start_again();
    for id in &ids {
        app.staff("hz-lake")
            .retry_dead_letter(pb::RetryDeadLetterRequest {
                message_id: id.clone(),
                reason: "providers back".into(),
                ..Default::default()
            })
            .await
            .expect("retry");
    }
    let sent = settle(&app, &ids, &[S::Sent], Duration::from_secs(20)).await;
    let takes = http_takes(&app);
    let mails = mails_by_id(&app);
    for (n, m) in sent.iter().enumerate() {
        if n % 2 == 0 {
            assert_eq!(takes[&m.message_id].0, 1, "SMS {}", m.message_id);
        } else {
            assert_eq!(mails[&format!("<{}@guestloop>", m.message_id)], 1);
        }
    }
    assert_eq!(takes.len() + mails.len(), ids.len());
}
