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
/// the bytes are one of three forms: a task no person ever worked (without `Task::field_work`;
/// 0.4.0 wrote every task so), a worked task without other departments' parts (without
/// `FieldWork::department_parts`), or a task with them. The empty fields all encode as zero
/// bytes, so the bytes are read once with the empty field work after them: postcard reads left
/// to right, and how many of those zeros the task took says which form it was written in (all
/// of them, one, or none). Any other count is a damaged record. The bytes a task was written as
/// before each field existed stay those it always had.
pub fn decode_task(bytes: &[u8]) -> Result<crate::task::Task, DecodeError> {
    // One buffer per thread: every read of a task from the store comes here, and a fresh
    // allocation per task costed a sixth of the decode (docs/benchmarks.md).
    thread_local! {
        static PADDED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let padding = &*EMPTY_FIELD_WORK;
    PADDED.with_borrow_mut(|padded| {
        padded.clear();
        padded.extend_from_slice(bytes);
        padded.extend_from_slice(padding);
        let (task, rest) = postcard::take_from_bytes(padded).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        written_form(padding.len(), rest.len(), &task).map(|()| task)
    })
}

/// Whether a task read with `padding` zero bytes after it, `rest` of them left, was written in
/// the form its content has: without field work only when it has none, without parts only
/// when it has field work but no part, whole only with a part. So a damaged record (its last
/// byte lost, read as a zero) is refused, not read as another task.
fn written_form(padding: usize, rest: usize, task: &crate::task::Task) -> Result<(), DecodeError> {
    let work = &task.field_work;
    let canonical = match padding.checked_sub(rest) {
        None => return Err(DecodeError::Trailing(rest - padding)),
        Some(taken) if taken == padding => work.is_empty(),
        Some(1) => !work.is_empty() && work.department_parts.is_empty(),
        Some(0) => !work.department_parts.is_empty(),
        Some(_) => false,
    };
    if canonical {
        Ok(())
    } else {
        Err(DecodeError::Malformed("a task's bytes end short of the form its content is written in".into()))
    }
}

/// Every field of an empty `FieldWork`, the last one included (its own encoding leaves that out):
/// zero bytes only.
static EMPTY_FIELD_WORK: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
    let mut bytes = encode(&crate::task::FieldWork::default()).expect("empty field work encodes");
    bytes.push(0);
    assert!(bytes.iter().all(|b| *b == 0), "empty fields encode as zeros");
    bytes
});

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
