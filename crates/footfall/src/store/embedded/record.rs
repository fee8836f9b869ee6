//! How the embedded store encodes a record in `entries` (and in journal rows): a
//! one-byte kind, the deadline, the value (see the layout in the parent module).

use jiff::Timestamp;

use super::convert::nanos;
use crate::keys::Key;
use crate::store::StoreError;
use crate::store::engine::{self, Record, Value};

pub(super) const KIND_COUNTER: u8 = 1;
pub(super) const KIND_SKETCH: u8 = 2;
pub(super) const KIND_BYTES: u8 = 3;
pub(super) const KIND_SET: u8 = 4;

/// A record as stored: kind, deadline, payload (see the module docs).
pub(super) fn encode(record: &Record) -> Vec<u8> {
    let sketch_bytes = match &record.value {
        Value::Sketch(sketch) => sketch.to_redis_bytes(),
        _ => Vec::new(),
    };
    let (kind, payload_len) = match &record.value {
        Value::Counter(_) => (KIND_COUNTER, 8),
        Value::Sketch(_) => (KIND_SKETCH, sketch_bytes.len()),
        Value::Set { members, .. } => (KIND_SET, 1 + members.len() * 16),
        Value::Bytes(bytes) => (KIND_BYTES, bytes.len()),
    };
    let mut out = Vec::with_capacity(2 + 16 + payload_len);
    out.push(kind);
    encode_deadline(&mut out, record.expire_at);
    match &record.value {
        Value::Counter(n) => out.extend_from_slice(&n.to_le_bytes()),
        Value::Sketch(_) => out.extend_from_slice(&sketch_bytes),
        Value::Set {
            members,
            overflowed,
        } => {
            out.push(u8::from(*overflowed));
            for member in members {
                out.extend_from_slice(member);
            }
        }
        Value::Bytes(bytes) => out.extend_from_slice(bytes),
    }
    out
}

pub(super) fn decode(key: &Key, bytes: &[u8]) -> Result<Record, StoreError> {
    let corrupt = |message: &str| StoreError::Corrupt {
        key: key.to_string(),
        message: format!("embedded record: {message}"),
    };
    let (deadline, payload) = decode_header(bytes).ok_or_else(|| corrupt("truncated header"))?;
    let value = match bytes[0] {
        KIND_COUNTER => {
            let raw: [u8; 8] = payload
                .try_into()
                .map_err(|_| corrupt("counter is not 8 bytes"))?;
            Value::Counter(u64::from_le_bytes(raw))
        }
        KIND_SKETCH => Value::Sketch(Box::new(engine::decode_sketch(key, payload)?)),
        KIND_BYTES => Value::Bytes(payload.to_vec()),
        KIND_SET => decode_set(payload).ok_or_else(|| corrupt("malformed set"))?,
        other => return Err(corrupt(&format!("unknown kind {other}"))),
    };
    Ok(Record {
        value,
        expire_at: timestamp(key, deadline)?,
    })
}

/// A set record's payload: the overflow flag, then sorted distinct 16-byte members.
/// Anything else (a bad flag, a ragged tail, members out of order) is `None`, so a
/// damaged record is reported rather than half-read.
fn decode_set(payload: &[u8]) -> Option<Value> {
    let (flag, rest) = payload.split_first()?;
    let overflowed = match flag {
        0 => false,
        1 => true,
        _ => return None,
    };
    let (chunks, tail) = rest.as_chunks::<16>();
    if !tail.is_empty() || chunks.is_empty() {
        return None;
    }
    if chunks.windows(2).any(|pair| pair[0] >= pair[1]) {
        return None;
    }
    Some(Value::Set {
        members: chunks.to_vec(),
        overflowed,
    })
}

/// A deadline as records and journal rows write it: a flag byte, then (flag 1) the
/// instant as an i128 LE of nanoseconds since the Unix epoch.
pub(super) fn encode_deadline(out: &mut Vec<u8>, deadline: Option<Timestamp>) {
    match deadline {
        None => out.push(0),
        Some(at) => {
            out.push(1);
            out.extend_from_slice(&nanos(at).to_le_bytes());
        }
    }
}

/// A deadline written by [`encode_deadline`] at the start of `bytes` (in nanoseconds),
/// and what follows it; `None` when it is cut short or its flag is neither 0 nor 1.
pub(super) fn split_deadline(bytes: &[u8]) -> Option<(Option<i128>, &[u8])> {
    let (flag, rest) = bytes.split_first()?;
    match flag {
        0 => Some((None, rest)),
        1 => {
            let (raw, rest) = rest.split_first_chunk::<16>()?;
            Some((Some(i128::from_le_bytes(*raw)), rest))
        }
        _ => None,
    }
}

/// The deadline and payload of an encoded record, or `None` when the header is cut short.
pub(super) fn decode_header(bytes: &[u8]) -> Option<(Option<i128>, &[u8])> {
    let (_kind, rest) = bytes.split_first()?;
    split_deadline(rest)
}

/// The deadline of an encoded record (`None` also for a damaged header, which `decode`
/// reports when the record is read).
pub(super) fn deadline_of(bytes: &[u8]) -> Option<i128> {
    decode_header(bytes).and_then(|(deadline, _)| deadline)
}

fn timestamp(key: &Key, deadline: Option<i128>) -> Result<Option<Timestamp>, StoreError> {
    deadline
        .map(|nanos| {
            Timestamp::from_nanosecond(nanos).map_err(|error| StoreError::Corrupt {
                key: key.to_string(),
                message: format!("deadline out of range: {error}"),
            })
        })
        .transpose()
}
