//! The one binary encoding of everything Xietong persists or replicates: WAL records, the
//! records and core in the store, the snapshot and backup stream, peer RPC bodies, and the
//! canonical bytes that digests and draw seeds hash.
//!
//! The encoding is postcard 1 (serde; varint integers; a published wire specification that the
//! 1.x releases keep). It replaced bincode 1, whose development has stopped, before the first
//! release and the first fixture (docs/storage.md, "The encoding"). Every caller goes through
//! this module, so the choice is made once; each container that holds these bytes (WAL segment,
//! store, stream, backup, peer RPC) carries its own format version beside them.
//!
//! Decoding is strict about the end: the bytes must hold exactly one value, nothing after it, so
//! a record with bytes appended is refused rather than half read. It is not strict about form:
//! postcard reads an overlong varint (`[0x80, 0x00]` for 0) as the value, so where bytes are
//! kept as they came and used as a key (a forward id in a stream), the reader re-encodes and
//! compares (`store::stream`); everything this build writes is canonical.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Why bytes did not decode: they are not the encoding of a value of the type asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{0}")]
    Malformed(String),
    #[error("{0} bytes follow the value")]
    Trailing(usize),
}

/// Why a value did not encode: a type the encoding cannot carry (a sequence of unknown length, or
/// a serde feature the format does not have). The ledger's own types always encode; this is a
/// programming error at the caller, reported rather than panicking where the caller can.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot encode: {0}")]
pub struct EncodeError(String);

/// The encoding of `value`.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, EncodeError> {
    postcard::to_stdvec(value).map_err(|e| EncodeError(e.to_string()))
}

/// The value `bytes` encode, refused unless they hold exactly one.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let (value, rest) = postcard::take_from_bytes(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(DecodeError::Trailing(rest.len()))
    }
}

/// A task from its stored bytes. A task's encoding leaves out its empty trailing fields, so
/// the bytes are one of three forms, tried from the commonest: a task no person ever worked
/// (without `Task::field_work`; 0.4.0 wrote every task so), a worked task without other
/// departments' parts (without `FieldWork::department_parts`), or a task with them. postcard
/// reads left to right, so bytes that end before a field are that task with the empty field's
/// encoding after them, and at most one of the three reads whole: unambiguous, and the bytes a
/// task was written as before each field existed stay those it always had.
pub fn decode_task(bytes: &[u8]) -> Result<crate::task::Task, DecodeError> {
    let no_field_work = [bytes, &empty_field_work()].concat();
    if let Ok(task) = decode(&no_field_work) {
        return Ok(task);
    }
    let no_parts = [bytes, &[EMPTY_SEQUENCE]].concat();
    if let Ok(task) = decode(&no_parts) {
        return Ok(task);
    }
    decode(bytes)
}

/// The encoding of an empty sequence (its length, 0).
const EMPTY_SEQUENCE: u8 = 0;

/// Every field of an empty `FieldWork`, the last one included (its own encoding leaves that out).
fn empty_field_work() -> Vec<u8> {
    let mut bytes = encode(&crate::task::FieldWork::default()).expect("empty field work encodes");
    bytes.push(EMPTY_SEQUENCE);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Sample {
        id: u64,
        name: String,
        steps: Vec<Option<u32>>,
    }

    #[test]
    fn a_value_round_trips_and_trailing_or_cut_bytes_are_refused() {
        let sample = Sample { id: 440_106, name: "广州".into(), steps: vec![Some(1), None] };
        let bytes = encode(&sample).unwrap();
        assert_eq!(decode::<Sample>(&bytes).unwrap(), sample);
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode::<Sample>(&longer), Err(DecodeError::Trailing(1)));
        assert!(matches!(decode::<Sample>(&bytes[..bytes.len() - 1]), Err(DecodeError::Malformed(_))));
    }

    #[test]
    fn the_wire_format_is_postcard_1() {
        // Varint integers and length-prefixed strings, as postcard 1's specification gives them:
        // a change of encoding must show here, not first in a fixture.
        let sample = Sample { id: 300, name: "ab".into(), steps: vec![Some(1)] };
        assert_eq!(encode(&sample).unwrap(), [0xac, 0x02, 2, b'a', b'b', 1, 1, 1]);
    }
}
