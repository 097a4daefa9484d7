//! feedback-intake's tables: the only place that writes SQL.

pub mod cases;
pub mod directory;
pub mod events;
pub mod feedback;
pub mod incidents;
pub mod replies;

use prost::Message;

/// Encodes a list of messages as one length-delimited blob (kept whole, read whole).
pub fn encode_list<M: Message>(items: &[M]) -> Vec<u8> {
    let mut buf = Vec::new();
    for m in items {
        m.encode_length_delimited(&mut buf).expect("vec grows");
    }
    buf
}

pub fn decode_list<M: Message + Default>(mut bytes: &[u8]) -> Vec<M> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        match M::decode_length_delimited(&mut bytes) {
            Ok(m) => out.push(m),
            Err(_) => break,
        }
    }
    out
}
