//! Redis-compatible HyperLogLog (TEMPORARY STUB until the real sketch lands).
#![allow(missing_docs)]
use std::collections::BTreeSet;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hll(BTreeSet<Vec<u8>>);

#[derive(Debug, thiserror::Error)]
#[error("bad sketch")]
pub struct SketchError;

impl Hll {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn add(&mut self, e: &[u8]) -> bool {
        self.0.insert(e.to_vec())
    }
    pub fn count(&self) -> u64 {
        self.0.len() as u64
    }
    pub fn merge(&mut self, o: &Hll) {
        self.0.extend(o.0.iter().cloned())
    }
    pub fn count_union(s: &[&Hll]) -> u64 {
        let mut u = Hll::new();
        for x in s {
            u.merge(x)
        }
        u.count()
    }
    pub fn to_redis_bytes(&self) -> Vec<u8> {
        let mut v = b"HYLL".to_vec();
        for e in &self.0 {
            v.push(e.len() as u8);
            v.extend(e);
        }
        v
    }
    pub fn from_redis_bytes(b: &[u8]) -> Result<Hll, SketchError> {
        let mut rest = b.strip_prefix(b"HYLL").ok_or(SketchError)?;
        let mut h = Hll::new();
        while let Some((&n, r)) = rest.split_first() {
            if r.len() < n as usize {
                return Err(SketchError);
            }
            h.0.insert(r[..n as usize].to_vec());
            rest = &r[n as usize..];
        }
        Ok(h)
    }
}
