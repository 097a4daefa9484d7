//! The hand-written answer must be byte for byte what prost generates for the proto message,
//! whichever form its results are kept in.

use super::*;
use prost::Message;

/// What prost-build generated for `ImportFeedbackResponse` before build.rs mapped it here.
#[derive(Clone, PartialEq, prost::Message)]
struct Generated {
    #[prost(message, repeated, tag = "1")]
    results: Vec<ImportItemResult>,
    #[prost(int32, tag = "2")]
    created_count: i32,
    #[prost(int32, tag = "3")]
    replayed_count: i32,
    #[prost(int32, tag = "4")]
    failed_count: i32,
    #[prost(int32, tag = "5")]
    cases_opened_count: i32,
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0123_4567_89ab_cdef_0000_0000_0000_0000 + n)
}

/// Item `n` of a mixed import: created with and without a case, replayed, failed with and
/// without a message.
fn outcome(n: usize) -> ItemOutcome {
    let u = n as u128;
    match n % 5 {
        0 => ItemOutcome::Stored {
            created: true,
            feedback: id(u),
            case: None,
        },
        1 => ItemOutcome::Stored {
            created: true,
            feedback: id(u),
            case: Some(id(1_000_000 + u)),
        },
        2 => ItemOutcome::Stored {
            created: false,
            feedback: id(u),
            case: Some(id(2_000_000 + u)),
        },
        3 => ItemOutcome::Failed(Box::new((
            3,
            format!("feedback.rating: item {n} is out of range"),
        ))),
        _ => ItemOutcome::Failed(Box::new((13, String::new()))),
    }
}

/// Every result of an answer in the generated form, compact ones at their indexes.
fn all_results(answer: &ImportFeedbackResponse) -> Vec<ImportItemResult> {
    let offset = answer.results.len();
    let compact = answer.compact.iter().enumerate();
    let mut all = answer.results.clone();
    all.extend(compact.map(|(i, o)| o.to_result(offset + i)));
    all
}

/// The generated message with the same results and the counts a server would give.
fn generated(before: &[ImportItemResult], compact: usize) -> Generated {
    let mut g = Generated {
        results: before.to_vec(),
        ..Default::default()
    };
    for n in 0..compact {
        let r = outcome(n).to_result(before.len() + n);
        match ImportItemStatus::try_from(r.status).unwrap() {
            ImportItemStatus::Created => {
                g.created_count += 1;
                g.cases_opened_count += i32::from(!r.case_id.is_empty());
            }
            ImportItemStatus::Replayed => g.replayed_count += 1,
            _ => g.failed_count += 1,
        }
        g.results.push(r);
    }
    g
}

#[test]
fn encodes_as_the_generated_message_and_decodes_back() {
    let decoded_before: Vec<ImportItemResult> = (0..3).map(|n| outcome(n).to_result(n)).collect();
    // (what, results already in the generated form, compact results pushed after them)
    let cases: [(&str, &[ImportItemResult], usize); 6] = [
        ("empty", &[], 0),
        (
            "one created at index 0 (a default value, left off the wire)",
            &[],
            1,
        ),
        ("every kind of outcome", &[], 5),
        ("across compact chunks", &[], 2 * CompactResults::CHUNK + 7),
        (
            "decoded results, then compact ones continuing their indexes",
            &decoded_before,
            11,
        ),
        ("decoded results only", &decoded_before, 0),
    ];
    for (what, before, compact) in cases {
        let mut answer = ImportFeedbackResponse {
            results: before.to_vec(),
            ..Default::default()
        };
        for n in 0..compact {
            answer.push(outcome(n));
        }
        let expected = generated(before, compact);
        let bytes = answer.encode_to_vec();
        assert_eq!(bytes, expected.encode_to_vec(), "{what}");
        assert_eq!(answer.encoded_len(), bytes.len(), "{what}");
        assert_eq!(answer.len(), before.len() + compact, "{what}");

        let back = ImportFeedbackResponse::decode(bytes.as_slice()).unwrap();
        assert_eq!(back.results, expected.results, "{what}");
        assert_eq!(back.results, all_results(&answer), "{what}");
        assert_eq!(
            (
                back.created_count,
                back.replayed_count,
                back.failed_count,
                back.cases_opened_count
            ),
            (
                expected.created_count,
                expected.replayed_count,
                expected.failed_count,
                expected.cases_opened_count
            ),
            "{what}"
        );
        assert_eq!(back.compact.len(), 0, "{what}: decoding fills `results`");
    }
}

#[test]
fn push_counts_each_kind_of_outcome() {
    let mut answer = ImportFeedbackResponse::default();
    for n in 0..10 {
        answer.push(outcome(n));
    }
    // Per 5 items: 2 created (one with a case), 1 replayed (its case not opened now), 2 failed.
    assert_eq!(
        (
            answer.created_count,
            answer.cases_opened_count,
            answer.replayed_count,
            answer.failed_count
        ),
        (4, 2, 2, 4)
    );
}

#[test]
fn decoding_skips_fields_it_does_not_know() {
    let mut bytes = Generated {
        results: vec![outcome(1).to_result(0)],
        created_count: 1,
        ..Default::default()
    }
    .encode_to_vec();
    encoding::string::encode(9, &"from a newer server".to_string(), &mut bytes);
    let back = ImportFeedbackResponse::decode(bytes.as_slice()).unwrap();
    assert_eq!(back.results, vec![outcome(1).to_result(0)]);
    assert_eq!(back.created_count, 1);
}
