//! A [`WriteBatch`] as `EVALSHA` calls of `apply.lua`: one per site on a Redis Cluster
//! (a call may only touch one slot), a few for the whole batch on a single server.
//!
//! Why a script rather than a plain pipeline: a visit starts only when a marker was
//! absent, and the visit counters grow by the number of such touches. That conditional
//! must run next to the data to cost one round trip; Lua does it atomically per call.
//!
//! Why many sites per call where possible: with 1,000 sites of Zipf popularity most
//! sites have a hit or two per batch, and the fixed cost of a script call (about half of
//! Redis's CPU per hit when each site had its own) was then paid nearly per hit.

use std::collections::BTreeMap;

use jiff::Timestamp;
use redis::Cmd;

use crate::keys::Key;
use crate::store::{StoreError, WriteBatch};

/// The script applying one site's writes; see the comment at its top for the layout.
pub(super) const APPLY_LUA: &str = include_str!("apply.lua");

/// How long a site keeps the token of a lane's last call: far longer than a call can be
/// sent again ([`RedisStore::APPLY_RETRY_BUDGET`](super::RedisStore::APPLY_RETRY_BUDGET)
/// plus a timeout), and refreshed by every call of the lane.
pub(super) const TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(600);

/// What makes one [`encode_batch`] idempotent: the sending lane and its call number.
#[derive(Clone, Debug)]
pub(super) struct Token {
    /// `{writer}.{lane}`: unique to one lane of one connected store.
    pub(super) lane: String,
    /// Grows by one with each call of the lane.
    pub(super) seq: u64,
}

impl Token {
    /// The key of this lane's token for one site's call (Cluster): it carries the site's
    /// hash tag, so it lives in the site's slot. `.` keeps it out of the key schema
    /// ([`Key::parse`] refuses it), so scans, copies and migrations pass it by.
    fn site_key(&self, tag: &str) -> String {
        format!("ff:{{{tag}}}:applied.{}", self.lane)
    }

    /// The key of this lane's token for the `index`th call of a batch (single server).
    fn call_key(&self, index: usize) -> String {
        format!("ff:applied.{}.{index}", self.lane)
    }
}

/// The most arguments and keys one call of a single server's batch carries before the
/// next call starts: about 6,000 hits, some 20 ms of Redis's time, so a call stays short
/// enough not to hold up readers, and long enough that its fixed cost is shared widely.
const CALL_ARGS_MAX: usize = 32_768;

/// One site's share of a batch, borrowed from it.
#[derive(Debug, Default)]
struct SiteShare<'b> {
    counters: Vec<&'b crate::store::CounterAdd>,
    sketches: Vec<&'b crate::store::SketchAdd>,
    sets: Vec<&'b crate::store::SetAdd>,
    visits: Vec<&'b crate::store::VisitGroup>,
}

/// Splits `batch` by site hash tag and encodes its `EVALSHA` calls, in site order, each
/// with the tag it is routed by: on a Cluster (`cluster`) one call per site; on a single
/// server the sites' parts packed into calls of up to [`CALL_ARGS_MAX`] arguments (tag
/// "": they travel in one pipeline).
///
/// On a Cluster, visit groups whose keys span sites are refused, since one script call
/// cannot touch two slots there; a single server runs them as they are.
pub(super) fn encode_batch<'b>(
    batch: &'b WriteBatch,
    script_sha: &str,
    cluster: bool,
    token: &Token,
) -> Result<Vec<(&'b str, Cmd)>, StoreError> {
    let shares = split_by_site(batch, cluster)?;
    if cluster {
        return shares
            .into_iter()
            .map(|(tag, share)| {
                let mut call = Call::default();
                call.add_part(&share)?;
                Ok((
                    tag,
                    call.finish(script_sha, &token.site_key(tag), token.seq),
                ))
            })
            .collect();
    }
    let mut calls = Vec::new();
    let mut call = Call::default();
    for share in shares.values() {
        call.add_part(share)?;
        if call.len() >= CALL_ARGS_MAX {
            let full = std::mem::take(&mut call);
            let key = token.call_key(calls.len());
            calls.push(("", full.finish(script_sha, &key, token.seq)));
        }
    }
    if call.parts > 0 {
        let key = token.call_key(calls.len());
        calls.push(("", call.finish(script_sha, &key, token.seq)));
    }
    Ok(calls)
}

fn split_by_site(
    batch: &WriteBatch,
    require_one_slot: bool,
) -> Result<BTreeMap<&str, SiteShare<'_>>, StoreError> {
    let mut shares: BTreeMap<&str, SiteShare<'_>> = BTreeMap::new();
    for add in &batch.counters {
        shares
            .entry(add.key.hash_tag())
            .or_default()
            .counters
            .push(add);
    }
    for add in &batch.sketches {
        shares
            .entry(add.key.hash_tag())
            .or_default()
            .sketches
            .push(add);
    }
    for add in &batch.sets {
        shares.entry(add.key.hash_tag()).or_default().sets.push(add);
    }
    for group in &batch.visits {
        let mut keys = group
            .counters
            .iter()
            .map(|(key, _)| key)
            .chain(group.sessions.iter().map(|touch| &touch.key))
            .chain(
                group
                    .sessions
                    .iter()
                    .filter_map(|t| t.previous_key.as_ref()),
            );
        let Some(first) = keys.next() else { continue };
        let tag = first.hash_tag();
        if require_one_slot && keys.any(|key| key.hash_tag() != tag) {
            return Err(StoreError::Config(format!(
                "a visit group mixes sites ({tag} and others): on a Redis Cluster each \
                 group must belong to one site"
            )));
        }
        shares.entry(tag).or_default().visits.push(group);
    }
    Ok(shares)
}

fn deadline(at: Option<Timestamp>) -> String {
    at.map_or_else(String::new, |at| at.as_millisecond().to_string())
}

/// One script call being encoded: its keys and arguments after the token's, and how
/// many sites' parts it holds.
#[derive(Debug, Default)]
struct Call<'b> {
    keys: Vec<&'b Key>,
    /// Arguments are owned text except elements, borrowed as bytes from the batch.
    args: Vec<Arg<'b>>,
    parts: usize,
}

impl<'b> Call<'b> {
    /// Keys and arguments so far.
    fn len(&self) -> usize {
        self.keys.len() + self.args.len()
    }

    /// Appends one site's part (see the layout at the top of `apply.lua`).
    fn add_part(&mut self, share: &SiteShare<'b>) -> Result<(), StoreError> {
        let Call { keys, args, parts } = self;
        *parts += 1;
        args.push(Arg::Text(share.counters.len().to_string()));
        for add in &share.counters {
            // INCRBY takes a signed 64-bit integer; a larger increment is a caller bug
            // that Redis would reject after earlier parts of the script had run.
            let by = i64::try_from(add.by).map_err(|_| {
                StoreError::Config(format!("increment {} of {} exceeds i64", add.by, add.key))
            })?;
            keys.push(&add.key);
            args.push(Arg::Text(by.to_string()));
            args.push(Arg::Text(deadline(add.expire_at)));
        }
        args.push(Arg::Text(share.sketches.len().to_string()));
        for add in &share.sketches {
            keys.push(&add.key);
            args.push(Arg::Text(add.elements.len().to_string()));
            args.push(Arg::Text(deadline(add.expire_at)));
            args.extend(add.elements.iter().map(|element| Arg::Bytes(element)));
        }
        args.push(Arg::Text(share.sets.len().to_string()));
        for add in &share.sets {
            keys.push(&add.key);
            args.push(Arg::Text(add.elements.len().to_string()));
            args.push(Arg::Text(add.cap.to_string()));
            args.push(Arg::Text(deadline(add.expire_at)));
            match &add.spill {
                Some(spill) => {
                    keys.push(spill);
                    args.push(Arg::Text("1".to_owned()));
                }
                None => args.push(Arg::Text("0".to_owned())),
            }
            args.extend(add.elements.iter().map(|element| Arg::Bytes(element)));
        }
        args.push(Arg::Text(share.visits.len().to_string()));
        for group in &share.visits {
            args.push(Arg::Text(group.counters.len().to_string()));
            args.push(Arg::Text(group.sessions.len().to_string()));
            for (key, expire_at) in &group.counters {
                keys.push(key);
                args.push(Arg::Text(deadline(*expire_at)));
            }
            for touch in &group.sessions {
                keys.push(&touch.key);
                match &touch.previous_key {
                    Some(previous) => {
                        keys.push(previous);
                        args.push(Arg::Text("1".to_owned()));
                    }
                    None => args.push(Arg::Text("0".to_owned())),
                }
                args.push(Arg::Text(deadline(Some(touch.expire_at))));
            }
        }
        Ok(())
    }

    /// The `EVALSHA` command: the token key first (a Cluster client routes a call by its
    /// first key), then the parts' keys; the call number, the token's lifetime and the
    /// number of parts, then the parts' arguments.
    fn finish(self, script_sha: &str, token_key: &str, seq: u64) -> Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(script_sha)
            .arg(self.keys.len() + 1)
            .arg(token_key.as_bytes());
        for key in self.keys {
            cmd.arg(key.as_bytes());
        }
        cmd.arg(seq.to_string())
            .arg(TOKEN_TTL.as_millis().to_string())
            .arg(self.parts.to_string());
        for arg in &self.args {
            match arg {
                Arg::Text(text) => cmd.arg(text.as_bytes()),
                Arg::Bytes(bytes) => cmd.arg(*bytes),
            };
        }
        cmd
    }
}

#[derive(Debug)]
enum Arg<'b> {
    Text(String),
    Bytes(&'b [u8]),
}
