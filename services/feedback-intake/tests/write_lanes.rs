//! An import and the front desk's single submissions are written by batchers of their own
//! (`import_write`, `batch_write`): an import filling its queue refuses its own items, never
//! the calls of a hotel submitting one card at a time, and a full single-call queue leaves
//! an import whole. Each lane is shrunk to one queued item in turn, so whatever goes through
//! it while an import streams is refused as overloaded.

mod common;

use common::*;
use guestloop_proto::feedback::v1 as pb;
use pb::FeedbackChannel as Ch;
use tonic::Code;

const ITEMS: u32 = 400;
const SINGLES: u32 = 20;

fn card(serial: u32) -> pb::ImportFeedbackRequest {
    let mut f = feedback("sh-bund", Ch::CommentCard, "The breakfast was good.");
    f.source = "card-scanner".into();
    f.external_id = format!("CARD-{serial:05}");
    pb::ImportFeedbackRequest {
        feedback: Some(f),
        ..Default::default()
    }
}

fn single(serial: u32) -> pb::SubmitFeedbackRequest {
    let mut f = feedback("sh-bund", Ch::CommentCard, "Friendly staff at the desk.");
    f.source = "front-desk".into();
    f.external_id = format!("DESK-{serial:05}");
    submit_req(f)
}

/// One queued item at most, one at a time.
fn tiny(lane: &str) -> String {
    format!("[{lane}]\nworkers = 1\nmax_batch = 1\nqueue = 1\n")
}

struct Case {
    name: &'static str,
    squeezed: &'static str,
    /// Whether the import sees some of its items refused (its own lane is the tiny one).
    import_refused: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_lane_refuses_only_its_own_calls_when_full() {
    let cases = [
        Case {
            name: "a full import lane",
            squeezed: "import_write",
            import_refused: true,
        },
        Case {
            name: "a full single-call lane",
            squeezed: "batch_write",
            import_refused: false,
        },
    ];
    for case in cases {
        let app = TestApp::spawn_with(&tiny(case.squeezed)).await;
        let mut importer = app.head_office();
        let import = tokio::spawn(async move {
            importer
                .import_feedback(tokio_stream::iter((0..ITEMS).map(card)))
                .await
                .map(|r| r.into_inner())
        });
        // The front desk's cards, one at a time for as long as the import streams.
        let mut singles = Vec::new();
        let mut serial = 0;
        while !import.is_finished() || serial < SINGLES {
            singles.push(app.head_office().submit_feedback(single(serial)).await);
            serial += 1;
        }
        let imported = import.await.expect("import task").expect("import call");

        let refused: Vec<&pb::ImportItemResult> = imported
            .results
            .iter()
            .filter(|r| r.status == pb::ImportItemStatus::Failed as i32)
            .collect();
        assert!(
            refused
                .iter()
                .all(|r| r.error_code == Code::ResourceExhausted as i32),
            "{}: an item failed otherwise: {refused:?}",
            case.name
        );
        assert_eq!(
            !refused.is_empty(),
            case.import_refused,
            "{}: {} of {ITEMS} import items refused",
            case.name,
            refused.len()
        );
        assert_eq!(
            imported.created_count as usize + refused.len(),
            ITEMS as usize,
            "{}",
            case.name
        );
        if case.import_refused {
            // The import's lane was full while they ran; the single calls never queued in it.
            for (i, s) in singles.iter().enumerate() {
                assert!(s.is_ok(), "{}: single call {i}: {s:?}", case.name);
            }
        }
        let stored: i64 = app.count("feedback").await;
        let singles_ok = singles.iter().filter(|s| s.is_ok()).count();
        assert_eq!(
            stored as usize,
            imported.created_count as usize + singles_ok,
            "{}: every acknowledged item is stored, nothing else",
            case.name
        );
    }
}
