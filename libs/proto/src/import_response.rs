//! `guestloop.feedback.v1.ImportFeedbackResponse` written by hand (build.rs maps the proto
//! message here): the same wire format, plus a compact form for the server. An import of
//! 100,000 items answered with generated `ImportItemResult`s held 88 bytes and a heap id
//! string per item (13 MB) while tonic encoded them into a buffer of its own, and that was
//! feedback-intake's peak of memory (guestloop-bench P3, docs/benchmarks/README.md). Kept
//! compact (40 bytes an item, in chunks), each result becomes an `ImportItemResult` only
//! for the moment it is encoded. Decoding fills `results`, as the generated type did.

use crate::feedback::v1::{ImportItemResult, ImportItemStatus};
use prost::bytes::{Buf, BufMut};
use prost::encoding::{self, DecodeContext, WireType};
use uuid::Uuid;

/// The answer to an import: one result per item in stream order, and the counts.
#[derive(Clone, PartialEq, Default)]
pub struct ImportFeedbackResponse {
    /// One per item, in stream order; a decoded answer has all its results here.
    pub results: Vec<ImportItemResult>,
    pub created_count: i32,
    pub replayed_count: i32,
    pub failed_count: i32,
    pub cases_opened_count: i32,
    /// Results the server kept compact, encoded after `results` (their items' indexes
    /// continue from `results.len()`); never filled by decoding.
    compact: CompactResults,
}

/// What became of one imported item, as a server keeps it until it answers.
#[derive(Clone, Debug, PartialEq)]
pub enum ItemOutcome {
    Stored {
        /// False when the item was seen before and the original is kept (REPLAYED).
        created: bool,
        feedback: Uuid,
        case: Option<Uuid>,
    },
    /// The gRPC code and message SubmitFeedback would have answered; boxed, since few
    /// items fail and the other outcomes should not carry a string's room.
    Failed(Box<(i32, String)>),
}

/// Outcomes in fixed-size chunks: one Vec of 100,000 doubled its buffer while the old one
/// was still held (heaptrack under P3).
#[derive(Clone, Debug, PartialEq, Default)]
struct CompactResults {
    chunks: Vec<Vec<ItemOutcome>>,
}

impl CompactResults {
    const CHUNK: usize = 4096;

    fn push(&mut self, outcome: ItemOutcome) {
        match self.chunks.last_mut() {
            Some(chunk) if chunk.len() < Self::CHUNK => chunk.push(outcome),
            _ => {
                let mut chunk = Vec::with_capacity(Self::CHUNK);
                chunk.push(outcome);
                self.chunks.push(chunk);
            }
        }
    }

    fn len(&self) -> usize {
        self.chunks.iter().map(Vec::len).sum()
    }

    fn iter(&self) -> impl Iterator<Item = &ItemOutcome> {
        self.chunks.iter().flatten()
    }
}

impl ItemOutcome {
    /// The generated message this outcome stands for, at `index` in the stream.
    pub fn to_result(&self, index: usize) -> ImportItemResult {
        let mut result = ImportItemResult {
            index: index as i32,
            ..Default::default()
        };
        match self {
            ItemOutcome::Stored {
                created,
                feedback,
                case,
            } => {
                result.status = if *created {
                    ImportItemStatus::Created
                } else {
                    ImportItemStatus::Replayed
                } as i32;
                result.feedback_id = feedback.to_string();
                result.case_id = case.map(|c| c.to_string()).unwrap_or_default();
            }
            ItemOutcome::Failed(failure) => {
                result.status = ImportItemStatus::Failed as i32;
                result.error_code = failure.0;
                result.error_message = failure.1.clone();
            }
        }
        result
    }
}

impl ImportFeedbackResponse {
    /// Adds the next item's outcome (its index is the number of results before it) and
    /// counts it.
    pub fn push(&mut self, outcome: ItemOutcome) {
        match &outcome {
            ItemOutcome::Stored {
                created: true,
                case,
                ..
            } => {
                self.created_count += 1;
                if case.is_some() {
                    self.cases_opened_count += 1;
                }
            }
            ItemOutcome::Stored { created: false, .. } => self.replayed_count += 1,
            ItemOutcome::Failed(_) => self.failed_count += 1,
        }
        self.compact.push(outcome);
    }

    /// How many items the answer holds, in either form.
    pub fn len(&self) -> usize {
        self.results.len() + self.compact.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn counts(&self) -> [(u32, &i32); 4] {
        [
            (2, &self.created_count),
            (3, &self.replayed_count),
            (4, &self.failed_count),
            (5, &self.cases_opened_count),
        ]
    }
}

impl prost::Message for ImportFeedbackResponse {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        encoding::message::encode_repeated(1, &self.results, buf);
        let offset = self.results.len();
        for (i, outcome) in self.compact.iter().enumerate() {
            encoding::message::encode(1, &outcome.to_result(offset + i), buf);
        }
        for (tag, count) in self.counts() {
            if *count != 0 {
                encoding::int32::encode(tag, count, buf);
            }
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        match tag {
            1 => encoding::message::merge_repeated(wire_type, &mut self.results, buf, ctx),
            2 => encoding::int32::merge(wire_type, &mut self.created_count, buf, ctx),
            3 => encoding::int32::merge(wire_type, &mut self.replayed_count, buf, ctx),
            4 => encoding::int32::merge(wire_type, &mut self.failed_count, buf, ctx),
            5 => encoding::int32::merge(wire_type, &mut self.cases_opened_count, buf, ctx),
            _ => encoding::skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        let offset = self.results.len();
        let compact: usize = self
            .compact
            .iter()
            .enumerate()
            .map(|(i, o)| encoding::message::encoded_len(1, &o.to_result(offset + i)))
            .sum();
        let counts: usize = self
            .counts()
            .iter()
            .filter(|(_, count)| **count != 0)
            .map(|(tag, count)| encoding::int32::encoded_len(*tag, count))
            .sum();
        encoding::message::encoded_len_repeated(1, &self.results) + compact + counts
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

impl std::fmt::Debug for ImportFeedbackResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportFeedbackResponse")
            .field("results", &self.results)
            .field("compact_results", &self.compact.len())
            .field("created_count", &self.created_count)
            .field("replayed_count", &self.replayed_count)
            .field("failed_count", &self.failed_count)
            .field("cases_opened_count", &self.cases_opened_count)
            .finish()
    }
}

#[cfg(test)]
mod tests;
