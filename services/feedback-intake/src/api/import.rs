//! ImportFeedback: a client stream of items, each submitted on its own (a bad item fails
//! alone), many in flight at once so they share batches, answered in stream order.

use crate::domain::submission::Submission;
use crate::error::{FeedbackError, Result};
use crate::intake::{self, Arrival, Outcome};
use crate::state::{Caller, State};
use guestloop_proto::feedback::v1 as pb;
use guestloop_proto::import_response::ItemOutcome;
use std::sync::Arc;
use tonic::Streaming;

/// Each item is submitted on its own (its own savepoint in a shared commit); a bad item
/// fails alone and the rest go on.
pub async fn import(
    state: &Arc<State>,
    caller: &Caller,
    mut stream: Streaming<pb::ImportFeedbackRequest>,
) -> Result<pb::ImportFeedbackResponse> {
    use futures::stream::{FuturesOrdered, StreamExt};
    let mut answer = pb::ImportFeedbackResponse::default();
    let mut index: i32 = 0;
    // Up to `import_in_flight` items are submitted at once, so they share group commits
    // instead of paying one each; results are still reported in stream order.
    let mut in_flight = FuturesOrdered::new();
    let limit = state.intake.import_in_flight.max(1);
    let broken = loop {
        if in_flight.len() >= limit
            && let Some(result) = in_flight.next().await
        {
            answer.push(outcome(result));
        }
        let item = match stream.message().await {
            Ok(Some(item)) => item,
            Ok(None) => break None,
            Err(status) => break Some(status),
        };
        if index as usize >= state.intake.import_max_items {
            return Err(FeedbackError::ResourceExhausted(format!(
                "at most {} items per import; split the import",
                state.intake.import_max_items
            )));
        }
        let parsed = Submission::parse(
            item.feedback,
            item.guest,
            &item.idempotency_key,
            item.complaint,
            &state.intake,
        )
        .map(Box::new);
        let (state, caller) = (state.clone(), caller.clone());
        // A task of its own, so it runs while the next item is read.
        let task = tokio::spawn(tracing::Instrument::in_current_span(async move {
            match parsed {
                Ok(s) => intake::submit(&state, &caller, s, Arrival::Imported).await,
                Err(v) => Err(v.into()),
            }
        }));
        in_flight.push_back(async move {
            task.await.unwrap_or_else(|_| {
                Err(FeedbackError::GroupCommit(
                    guestloop_db::batch::GroupError::Closed,
                ))
            })
        });
        index += 1;
    };
    // What was read is submitted either way: finish it before answering.
    while let Some(result) = in_flight.next().await {
        answer.push(outcome(result));
    }
    if let Some(status) = broken {
        return Err(FeedbackError::FailedPrecondition(format!(
            "the import stream broke after {index} items: {}",
            status.message()
        )));
    }
    Ok(answer)
}

/// An item's outcome as the answer keeps it until the import ends (40 bytes, not a
/// generated result with a heap string per id).
fn outcome(result: Result<Outcome>) -> ItemOutcome {
    match result {
        Ok(o) => ItemOutcome::Stored {
            created: o.created,
            feedback: o.feedback.id,
            case: o.case.as_ref().map(|c| c.id),
        },
        Err(e) => {
            let status = tonic::Status::from(e);
            ItemOutcome::Failed(Box::new((
                status.code() as i32,
                status.message().to_string(),
            )))
        }
    }
}
