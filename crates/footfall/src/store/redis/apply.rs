//! A [`WriteBatch`] as one `EVALSHA` of `apply.lua` per site.
//!
//! Why a script rather than a plain pipeline: a visit starts only when a marker was
//! absent, and the visit counters grow by the number of such touches. That conditional
//! must run next to the data to cost one round trip; Lua does it atomically per site.

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
    /// The key of this lane's token at one site: it carries the site's hash tag, so it
    /// lives in the site's Cluster slot. `.` keeps it out of the key schema
    /// ([`Key::parse`] refuses it), so scans, copies and migrations pass it by.
    fn key(&self, tag: &str) -> String {
        format!("ff:{{{tag}}}:applied.{}", self.lane)
    }
}

/// One site's share of a batch, borrowed from it.
#[derive(Debug, Default)]
struct SiteShare<'b> {
    counters: Vec<&'b crate::store::CounterAdd>,
    sketches: Vec<&'b crate::store::SketchAdd>,
    sets: Vec<&'b crate::store::SetAdd>,
    visits: Vec<&'b crate::store::VisitGroup>,
}

/// Splits `batch` by site hash tag and encodes one `EVALSHA` per site, in site order.
///
/// `require_one_slot` (Redis Cluster) refuses visit groups whose keys span sites, since
/// one script call cannot touch two slots there; a single node runs them as they are.
pub(super) fn encode_batch<'b>(
    batch: &'b WriteBatch,
    script_sha: &str,
    require_one_slot: bool,
    token: &Token,
) -> Result<Vec<(&'b str, Cmd)>, StoreError> {
    let mut shares: BTreeMap<&'b str, SiteShare<'b>> = BTreeMap::new();
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
    shares
        .into_iter()
        .map(|(tag, share)| Ok((tag, encode_share(tag, &share, script_sha, token)?)))
        .collect()
}

fn deadline(at: Option<Timestamp>) -> String {
    at.map_or_else(String::new, |at| at.as_millisecond().to_string())
}

fn encode_share(
    tag: &str,
    share: &SiteShare<'_>,
    script_sha: &str,
    token: &Token,
) -> Result<Cmd, StoreError> {
    let mut keys: Vec<&Key> = Vec::new();
    // Arguments are owned text except elements, borrowed as bytes from the batch.
    let mut args: Vec<Arg<'_>> = Vec::new();

    args.push(Arg::Text(token.seq.to_string()));
    args.push(Arg::Text(TOKEN_TTL.as_millis().to_string()));

    args.push(Arg::Text(share.counters.len().to_string()));
    for add in &share.counters {
        // INCRBY takes a signed 64-bit integer; a larger increment is a caller bug that
        // Redis would reject after earlier parts of the script had run.
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

    let mut cmd = redis::cmd("EVALSHA");
    // The token key first: a Cluster client routes the call by its first key.
    cmd.arg(script_sha)
        .arg(keys.len() + 1)
        .arg(token.key(tag).as_bytes());
    for key in keys {
        cmd.arg(key.as_bytes());
    }
    for arg in &args {
        match arg {
            Arg::Text(text) => cmd.arg(text.as_bytes()),
            Arg::Bytes(bytes) => cmd.arg(*bytes),
        };
    }
    Ok(cmd)
}

#[derive(Debug)]
enum Arg<'b> {
    Text(String),
    Bytes(&'b [u8]),
}
