//! Schema-aware random messages for the parser fuzzers (R8): any message of the descriptor
//! set, encoded field by field from a stream of choice bytes. Random bytes alone seldom
//! decode into a request with nested fields set, so the property tests and the cargo-fuzz
//! targets draw their requests and events from here instead: every field of the right wire
//! type, with the values parsers trip on (empty, huge and non-ASCII text, control
//! characters, out-of-range enum numbers, integer extremes, NaN, timestamps at chrono's
//! limits, lists over their caps). The same bytes always give the same message, so a
//! libFuzzer input or a proptest case replays exactly, and libFuzzer's mutations of the
//! choice bytes move through the message space field by field.
//!
//! [`field_path_exists`] checks the other half of a parser's contract: the field a
//! rejection names is a real path of the request ("stay.total_spend.currency_code",
//! "feedback.tags[3]", "message.variables[name]").

use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint};
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorSet};
use std::collections::HashMap;
use std::sync::OnceLock;

/// Nesting depth beyond which message fields are left unset (the protos have cycles only
/// through optional messages, but deep trees only slow the fuzzers down).
const MAX_DEPTH: usize = 5;

mod choices;
pub use choices::Choices;

/// Messages by full name (".pkg.Msg"), and every field and enum value name.
struct Index {
    messages: HashMap<String, DescriptorProto>,
    enums: HashMap<String, Vec<i32>>,
    names: Vec<String>,
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let set =
            FileDescriptorSet::decode(crate::FILE_DESCRIPTOR_SET).expect("the descriptor set");
        let mut idx = Index {
            messages: HashMap::new(),
            enums: HashMap::new(),
            names: Vec::new(),
        };
        fn add_enum(idx: &mut Index, prefix: &str, e: &prost_types::EnumDescriptorProto) {
            idx.enums.insert(
                format!("{prefix}.{}", e.name()),
                e.value.iter().map(|v| v.number()).collect(),
            );
            for v in &e.value {
                idx.names.push(v.name().to_string());
                // The lower-case tail ("STAFF_ROLE_DUTY_MANAGER" → "duty_manager").
                let tail = v.name().splitn(3, '_').nth(2).unwrap_or_default();
                idx.names.push(tail.to_ascii_lowercase());
            }
        }
        fn add_message(idx: &mut Index, prefix: &str, m: &DescriptorProto) {
            let name = format!("{prefix}.{}", m.name());
            for f in &m.field {
                idx.names.push(f.name().to_string());
            }
            for e in &m.enum_type {
                add_enum(idx, &name, e);
            }
            for n in &m.nested_type {
                add_message(idx, &name, n);
            }
            idx.messages.insert(name, m.clone());
        }
        for file in &set.file {
            let prefix = if file.package().is_empty() {
                String::new()
            } else {
                format!(".{}", file.package())
            };
            for e in &file.enum_type {
                add_enum(&mut idx, &prefix, e);
            }
            for m in &file.message_type {
                add_message(&mut idx, &prefix, m);
            }
        }
        idx.names.sort();
        idx.names.dedup();
        idx
    })
}

fn descriptor(full_name: &str) -> &'static DescriptorProto {
    let key = if full_name.starts_with('.') {
        full_name.to_string()
    } else {
        format!(".{full_name}")
    };
    index()
        .messages
        .get(&key)
        .unwrap_or_else(|| panic!("{full_name} is not a message of the descriptor set"))
}

/// A random message `M` of protobuf type `full_name`, drawn from `choices`.
pub fn message<M: Message + Default>(full_name: &str, choices: &mut Choices<'_>) -> M {
    let bytes = encoded(full_name, choices);
    M::decode(bytes.as_slice()).expect("a message encoded from its own descriptor decodes")
}

/// A request to parse, one of: the remaining bytes decoded as they are (`None` when they do
/// not decode, as the server would refuse them); a message drawn from the descriptor; or
/// `valid` with a few fields changed. Fields drawn at random seldom all pass a parser, so
/// without the last the accepting paths (and what runs after them) would go untested.
pub fn request<M: Message + Default>(
    full_name: &str,
    valid: &M,
    choices: &mut Choices<'_>,
) -> Option<M> {
    match choices.byte() % 8 {
        0 => M::decode(choices.rest()).ok(),
        1 | 2 => Some(message(full_name, choices)),
        _ => {
            // Encodings concatenate as a merge: the sparse message's scalars replace the
            // valid ones, its list entries are appended, its sub-messages merged.
            let mut bytes = valid.encode_to_vec();
            let density = 1 + choices.byte() % 3;
            encode_message(descriptor(full_name), choices, 0, density, &mut bytes);
            Some(M::decode(bytes.as_slice()).expect("a merge of valid encodings decodes"))
        }
    }
}

/// Panics unless a rejection of a `request` is a proper one: at least one violation, each
/// naming a field path of the request and saying what is wrong with it.
pub fn assert_names_fields<'a>(
    request: &str,
    violations: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    let mut any = false;
    for (field, description) in violations {
        any = true;
        assert!(
            field_path_exists(request, field),
            "a rejection of {request} names `{field}`, which is no field of it ({description})"
        );
        assert!(
            !description.trim().is_empty(),
            "a rejection of {request} says nothing about `{field}`"
        );
    }
    assert!(any, "a rejection of {request} names no field");
}

/// A random message of type `full_name` ("guestloop.feedback.v1.Feedback"), encoded.
pub fn encoded(full_name: &str, choices: &mut Choices<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    let density = [4, 8, 12, 16][choices.below(4)];
    encode_message(descriptor(full_name), choices, 0, density, &mut out);
    out
}

/// Encodes a message whose fields are each set with probability `density`/16.
fn encode_message(
    m: &DescriptorProto,
    c: &mut Choices<'_>,
    depth: usize,
    density: u8,
    out: &mut Vec<u8>,
) {
    let name = m.name();
    // The well-known times get values at the edges of what chrono and PostgreSQL hold.
    if matches!(name, "Timestamp" | "Duration") && m.field.len() == 2 {
        if !c.byte().is_multiple_of(8) {
            encode_key(1, WireType::Varint, out);
            encode_varint(c.seconds() as u64, out);
        }
        if !c.byte().is_multiple_of(4) {
            encode_key(2, WireType::Varint, out);
            encode_varint(i64::from(c.nanos()) as u64, out);
        }
        return;
    }
    for f in &m.field {
        // A oneof's members may all be set; the last one wins.
        if c.byte() % 16 >= density {
            continue;
        }
        let repeated = f.label() == Label::Repeated;
        let count = if repeated {
            match c.byte() % 8 {
                0..=3 => c.below(3),
                4 | 5 => 3 + c.below(4),
                6 => 20 + c.below(3), // at and over the 20-entry caps
                _ => 51,
            }
        } else {
            1
        };
        for _ in 0..count {
            if c.is_empty() && count > 1 {
                break;
            }
            encode_field(f, c, depth, density, out);
        }
    }
}

fn encode_field(
    f: &FieldDescriptorProto,
    c: &mut Choices<'_>,
    depth: usize,
    density: u8,
    out: &mut Vec<u8>,
) {
    let tag = f.number() as u32;
    let varint = |v: u64, out: &mut Vec<u8>| {
        encode_key(tag, WireType::Varint, out);
        encode_varint(v, out);
    };
    match f.r#type() {
        Type::Int32 | Type::Int64 | Type::Uint32 | Type::Uint64 => varint(c.int() as u64, out),
        Type::Sint32 | Type::Sint64 => {
            let v = c.int();
            varint(((v << 1) ^ (v >> 63)) as u64, out)
        }
        Type::Bool => varint(u64::from(c.bool()), out),
        Type::Enum => {
            let known = index()
                .enums
                .get(f.type_name())
                .cloned()
                .unwrap_or_default();
            let v = match c.byte() % 8 {
                0 => c.int() as i32,
                1 => [-1, 1000, i32::MAX, i32::MIN][c.below(4)],
                _ if known.is_empty() => 0,
                _ => known[c.below(known.len())],
            };
            varint(i64::from(v) as u64, out)
        }
        Type::Fixed32 | Type::Sfixed32 => {
            encode_key(tag, WireType::ThirtyTwoBit, out);
            out.extend_from_slice(&(c.int() as u32).to_le_bytes());
        }
        Type::Float => {
            encode_key(tag, WireType::ThirtyTwoBit, out);
            out.extend_from_slice(&(float(c) as f32).to_le_bytes());
        }
        Type::Fixed64 | Type::Sfixed64 => {
            encode_key(tag, WireType::SixtyFourBit, out);
            out.extend_from_slice(&(c.int() as u64).to_le_bytes());
        }
        Type::Double => {
            encode_key(tag, WireType::SixtyFourBit, out);
            out.extend_from_slice(&float(c).to_le_bytes());
        }
        Type::String => delimited(tag, c.text().as_bytes(), out),
        Type::Bytes => {
            let n = c.below(64);
            let b: Vec<u8> = (0..n).map(|_| c.byte()).collect();
            delimited(tag, &b, out)
        }
        Type::Message => {
            if depth >= MAX_DEPTH {
                return;
            }
            let mut inner = Vec::new();
            encode_message(descriptor(f.type_name()), c, depth + 1, density, &mut inner);
            delimited(tag, &inner, out)
        }
        Type::Group => {}
    }
}

fn float(c: &mut Choices<'_>) -> f64 {
    match c.byte() % 8 {
        0 => 0.0,
        1 => f64::NAN,
        2 => [
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            f64::MAX,
            f64::MIN_POSITIVE,
        ][c.below(5)],
        3 | 4 => c.below(11) as f64,
        5 => -(c.below(11) as f64),
        6 => c.below(1001) as f64 / 10.0,
        _ => f64::from_bits(c.u64()),
    }
}

fn delimited(tag: u32, bytes: &[u8], out: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// Whether `path` names a field of message `full_name`: dot-separated field names, each
/// optionally followed by one `[index or key]` ("feedback.survey.csi_scores[2].score"); the
/// last may be a oneof's name.
pub fn field_path_exists(full_name: &str, path: &str) -> bool {
    let mut message = descriptor(full_name);
    let mut rest = path;
    loop {
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        let (name, after) = rest.split_at(end);
        let Some(field) = message.field.iter().find(|f| f.name() == name) else {
            // A oneof's name stands for "one of these fields" ("timer.action.action").
            return after.is_empty() && message.oneof_decl.iter().any(|o| o.name() == name);
        };
        let after = match after.strip_prefix('[') {
            // A key may hold any text, dots included: the index ends at the last `]` before
            // the next `.field` or the end.
            Some(key) => match key.rfind(']') {
                Some(close) => &key[close + 1..],
                None => return false,
            },
            None => after,
        };
        if after.is_empty() {
            return true;
        }
        let Some(next) = after.strip_prefix('.') else {
            return false;
        };
        if field.r#type() != Type::Message {
            return false;
        }
        message = descriptor(field.type_name());
        rest = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_gives_a_message_that_decodes() {
        for seed in 0..200u32 {
            let data: Vec<u8> = (0..600u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(40_503)) as u8)
                .collect();
            let _: crate::feedback::v1::SubmitFeedbackRequest = message(
                "guestloop.feedback.v1.SubmitFeedbackRequest",
                &mut Choices::new(&data),
            );
            let _: crate::events::v1::DeliverEventsRequest = message(
                "guestloop.events.v1.DeliverEventsRequest",
                &mut Choices::new(&data),
            );
        }
    }

    #[test]
    fn field_paths_follow_the_descriptors() {
        let req = "guestloop.feedback.v1.SubmitFeedbackRequest";
        assert!(field_path_exists(
            req,
            "feedback.survey.csi_scores[2].score"
        ));
        assert!(field_path_exists(req, "feedback.tags[0]"));
        assert!(!field_path_exists(req, "feedback.nonsense"));
        assert!(!field_path_exists(req, "feedback.tags.x"));
        let send = "guestloop.notification.v1.SendMessageRequest";
        assert!(field_path_exists(send, "message.variables[a.b[c]]"));
    }
}
