//! The audit log: every admin change, who made it and what it changed.
//!
//! Entries are appended to chunks of at most [`CHUNK_ENTRIES`], each a JSON document
//! `{"format": 1, "entries": [oldest … newest]}` under [`keys::audit_chunk`], through the
//! same compare-and-swap loop as the registry ([`read_modify_write`]), so entries from
//! several instances are never lost. [`keys::audit_head`] names the chunk appended to
//! (chunk 0 until it is first written); when it is full, the first writer to see it
//! moves the head on and deletes the chunk that falls out, so the log keeps the last
//! [`MAX_CHUNKS`] chunks (about the last 10,000 entries, dropped a chunk at a time) and
//! an append reads and writes one chunk, whatever the log holds.
//! The whole log in one document, as earlier versions wrote it under [`keys::audit`], is
//! read as the oldest part until the chunks reach the limit, then deleted. Each entry
//! is also logged at INFO with structured fields.
//!
//! The actor is a token's *fingerprint*: the first 8 hex digits of SHA-256 over the
//! token's SHA-256 digest, with the token's scope (`operator` or `sites:a,b`). It tells
//! the configured tokens apart and cannot be turned back into the token; neither the
//! token nor the client's address is ever written here.

use std::fmt;

use footfall::keys;
use footfall::store::Store;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::cas::{CasError, Step, read_modify_write};

/// How many entries the log keeps at most; older ones are dropped a chunk at a time.
pub const MAX_ENTRIES: usize = CHUNK_ENTRIES * MAX_CHUNKS as usize;

/// Entries per chunk (more when one append brings more). A site's settings make an
/// entry of about 1.5 KB, so a chunk is at most about 150 KB, the most an append reads
/// and writes.
pub const CHUNK_ENTRIES: usize = 100;

/// Chunks kept.
pub const MAX_CHUNKS: u64 = 100;

/// How many times an append moves on past a full chunk before it gives up (other
/// writers filling chunks as fast as it moves).
const MAX_ROLLS: u32 = 8;

/// The document format this version reads and writes.
const FORMAT: u32 = 1;

/// What was done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// A site was registered.
    SiteCreate,
    /// A site's settings were replaced.
    SiteUpdate,
    /// A site was removed from the registry.
    SiteDelete,
    /// A baseline total was set.
    BaselineSet,
    /// A site's salt was replaced by hand.
    SaltRotate,
    /// The sites file was merged into the registry at start-up.
    RegistryImport,
    /// Daily figures of an earlier counter were imported into a site's history.
    HistoryImport,
    /// A site's imported history was removed.
    HistoryDelete,
}

impl Action {
    /// The action's name in entries and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::SiteCreate => "site.create",
            Action::SiteUpdate => "site.update",
            Action::SiteDelete => "site.delete",
            Action::BaselineSet => "baseline.set",
            Action::SaltRotate => "salt.rotate",
            Action::RegistryImport => "registry.import",
            Action::HistoryImport => "history.import",
            Action::HistoryDelete => "history.delete",
        }
    }
}

/// A token's fingerprint: 4 bytes of SHA-256 over the token's digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenFingerprint(pub [u8; 4]);

impl fmt::Display for TokenFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for TokenFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenFingerprint({self})")
    }
}

/// Who made a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A request bearing the token with this fingerprint.
    Token {
        /// The token's fingerprint.
        fingerprint: TokenFingerprint,
        /// What the token may manage: `operator` or `sites:a,b`.
        scope: std::sync::Arc<str>,
    },
    /// The service itself, at start-up (the sites file).
    Startup,
}

impl Actor {
    /// The token's scope, for a token.
    pub fn scope(&self) -> Option<&str> {
        match self {
            Actor::Token { scope, .. } => Some(scope),
            Actor::Startup => None,
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Token { fingerprint, .. } => write!(f, "token:{fingerprint}"),
            Actor::Startup => f.write_str("startup"),
        }
    }
}

/// One audit entry, as stored and as served by `GET /admin/v1/audit`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When, from the service's clock.
    pub at: Timestamp,
    /// What ([`Action::as_str`]); a string so entries written by newer versions still
    /// read.
    pub action: String,
    /// The site concerned, if one.
    #[serde(default)]
    pub site: Option<String>,
    /// Who: `token:<fingerprint>` or `startup`.
    pub actor: String,
    /// The token's scope: `operator` or `sites:a,b` (absent for `startup`, and in
    /// entries written before tokens had scopes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// What changed (old and new values, or the settings), kept as its JSON text: an
    /// append reads and writes a whole chunk, and `GET /admin/v1/audit` every chunk,
    /// which never need the summaries as a tree.
    #[serde(default = "no_summary")]
    pub summary: Box<RawValue>,
}

/// Entries are equal when every field is, the summary by its JSON text (as written).
impl PartialEq for AuditEntry {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
            && self.action == other.action
            && self.site == other.site
            && self.actor == other.actor
            && self.scope == other.scope
            && self.summary.get() == other.summary.get()
    }
}

fn no_summary() -> Box<RawValue> {
    RawValue::from_string("null".to_owned()).expect("null is JSON")
}

impl AuditEntry {
    /// An entry made now.
    pub fn new(
        at: Timestamp,
        action: Action,
        site: Option<&str>,
        actor: &Actor,
        summary: serde_json::Value,
    ) -> Self {
        AuditEntry {
            at,
            action: action.as_str().to_owned(),
            site: site.map(str::to_owned),
            actor: actor.to_string(),
            scope: actor.scope().map(str::to_owned),
            summary: serde_json::value::to_raw_value(&summary).unwrap_or_else(|_| no_summary()),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct AuditDocument {
    format: u32,
    entries: Vec<AuditEntry>,
}

/// The document under [`keys::audit_head`].
#[derive(Debug, Serialize, Deserialize)]
struct HeadDocument {
    format: u32,
    /// The chunk appended to.
    current: u64,
}

/// Why the audit log could not be read or appended to.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] footfall::store::StoreError),
    /// The stored log cannot be read. It is never overwritten in that state.
    #[error("the stored audit log ({key}) cannot be read: {message}")]
    Unreadable {
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// Other writers kept appending.
    #[error("the audit log kept changing under {attempts} attempts")]
    Contended {
        /// How many attempts were made.
        attempts: u32,
    },
}

fn unreadable(key: &footfall::keys::Key, message: String) -> AuditError {
    AuditError::Unreadable {
        key: key.to_string(),
        message,
    }
}

/// Refuses a document of a format this version does not read.
fn check_format(key: &footfall::keys::Key, format: u32) -> Result<(), AuditError> {
    if format == FORMAT {
        return Ok(());
    }
    Err(unreadable(
        key,
        format!("audit format {format} is not understood by this version (it reads {FORMAT})"),
    ))
}

fn parse(key: &footfall::keys::Key, bytes: &[u8]) -> Result<AuditDocument, AuditError> {
    let document: AuditDocument = serde_json::from_slice(bytes)
        .map_err(|e| unreadable(key, format!("not an audit document: {e}")))?;
    check_format(key, document.format)?;
    Ok(document)
}

fn parse_head(bytes: &[u8]) -> Result<u64, AuditError> {
    let key = keys::audit_head();
    let head: HeadDocument = serde_json::from_slice(bytes)
        .map_err(|e| unreadable(&key, format!("not an audit head: {e}")))?;
    check_format(&key, head.format)?;
    Ok(head.current)
}

fn to_json(key: &footfall::keys::Key, value: &impl Serialize) -> Result<Vec<u8>, AuditError> {
    serde_json::to_vec(value).map_err(|e| unreadable(key, e.to_string()))
}

/// The chunk appended to. No head means chunk 0: the head is first written when the
/// log moves on to chunk 1.
async fn head<S: Store + ?Sized>(store: &S, now: Timestamp) -> Result<u64, AuditError> {
    match store.get(&keys::audit_head(), now).await? {
        Some(bytes) => parse_head(&bytes),
        None => Ok(0),
    }
}

fn cas_error(error: CasError<AuditError>) -> AuditError {
    match error {
        CasError::Rejected(error) => error,
        CasError::Store(error) => AuditError::Store(error),
        CasError::Contended { attempts } => AuditError::Contended { attempts },
    }
}

/// Appends `entries` (in order) to the stored log, in the chunk the head names, or in
/// the next one when they do not fit.
pub async fn append<S: Store + ?Sized>(
    store: &S,
    entries: &[AuditEntry],
    now: Timestamp,
) -> Result<(), AuditError> {
    if entries.is_empty() {
        return Ok(());
    }
    for _ in 0..MAX_ROLLS {
        let current = head(store, now).await?;
        let key = keys::audit_chunk(current);
        let appended = read_modify_write(store, &key, now, |stored| {
            let mut document = match stored {
                None => AuditDocument {
                    format: FORMAT,
                    entries: Vec::new(),
                },
                Some(bytes) => parse(&key, bytes)?,
            };
            // An empty chunk takes any number; a chunk with entries, up to its size.
            if !document.entries.is_empty()
                && document.entries.len() + entries.len() > CHUNK_ENTRIES
            {
                return Ok(Step::Keep(false));
            }
            document.entries.extend_from_slice(entries);
            Ok(Step::Write(to_json(&key, &document)?, true))
        })
        .await
        .map_err(cas_error)?;
        if appended {
            return Ok(());
        }
        // Full: the first writer to get here moves the head on; the chunk it pushes out
        // of the log is deleted (by each writer that saw it full: deleting twice is
        // harmless), and with chunk 0 the one-document log of earlier versions.
        move_head(store, current, current + 1, now).await?;
        if let Some(old) = (current + 1).checked_sub(MAX_CHUNKS) {
            store.delete(&[keys::audit_chunk(old)]).await?;
            if old == 0 {
                store.delete(&[keys::audit()]).await?;
            }
        }
    }
    Err(AuditError::Contended {
        attempts: MAX_ROLLS,
    })
}

/// Sets the head to `to` if it still names `from` (another writer may have moved it).
async fn move_head<S: Store + ?Sized>(
    store: &S,
    from: u64,
    to: u64,
    now: Timestamp,
) -> Result<(), AuditError> {
    let key = keys::audit_head();
    read_modify_write(store, &key, now, |stored| {
        let current = stored.map(parse_head).transpose()?.unwrap_or(0);
        if current != from {
            return Ok(Step::Keep(()));
        }
        let head = HeadDocument {
            format: FORMAT,
            current: to,
        };
        Ok(Step::Write(to_json(&key, &head)?, ()))
    })
    .await
    .map_err(cas_error)
}

/// The most recent `limit` entries that `shown` keeps, newest first, and how many it
/// keeps in all.
pub async fn recent<S: Store + ?Sized>(
    store: &S,
    limit: usize,
    now: Timestamp,
    shown: impl Fn(&AuditEntry) -> bool,
) -> Result<(Vec<AuditEntry>, usize), AuditError> {
    let mut kept = Vec::new();
    let mut total = 0;
    let mut take = |key: footfall::keys::Key, bytes: Vec<u8>| -> Result<(), AuditError> {
        for entry in parse(&key, &bytes)?.entries.into_iter().rev() {
            if shown(&entry) {
                total += 1;
                if kept.len() < limit {
                    kept.push(entry);
                }
            }
        }
        Ok(())
    };
    let current = head(store, now).await?;
    let oldest = (current + 1).saturating_sub(MAX_CHUNKS);
    for n in (oldest..=current).rev() {
        let key = keys::audit_chunk(n);
        if let Some(bytes) = store.get(&key, now).await? {
            take(key, bytes)?;
        }
    }
    // The one-document log of earlier versions is older than every chunk, and kept
    // until chunk 0 leaves the log.
    if oldest == 0
        && let Some(bytes) = store.get(&keys::audit(), now).await?
    {
        take(keys::audit(), bytes)?;
    }
    Ok((kept, total))
}

/// Logs `entries` at INFO and appends them to the stored log. Returns whether the append
/// succeeded; a failure is logged at ERROR (the change itself is done and stays done,
/// and the INFO lines still record it).
pub async fn record<S: Store + ?Sized>(
    store: &S,
    now: Timestamp,
    entries: Vec<AuditEntry>,
) -> bool {
    for entry in &entries {
        tracing::info!(
            target: "footfall::audit",
            action = %entry.action,
            site = entry.site.as_deref().unwrap_or("-"),
            actor = %entry.actor,
            scope = entry.scope.as_deref().unwrap_or("-"),
            summary = %entry.summary,
            "admin change"
        );
    }
    match append(store, &entries, now).await {
        Ok(()) => true,
        Err(error) => {
            tracing::error!(error = %error, entries = entries.len(), "audit entries not stored");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use footfall::store::MemoryStore;

    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_796_000_000 + second).unwrap()
    }

    fn entry(n: i64) -> AuditEntry {
        AuditEntry::new(
            at(n),
            Action::BaselineSet,
            Some("caukee"),
            &Actor::Token {
                fingerprint: TokenFingerprint([0xde, 0xad, 0xbe, 0xef]),
                scope: "sites:caukee".into(),
            },
            serde_json::json!({ "new": n }),
        )
    }

    #[tokio::test]
    async fn the_log_keeps_the_newest_entries_newest_first() {
        let store = MemoryStore::new();
        assert_eq!(
            recent(&store, 10, at(0), |_| true).await.unwrap(),
            (Vec::new(), 0)
        );
        append(&store, &[entry(0), entry(1)], at(1)).await.unwrap();
        // One by one and in threes, as admin writes come, past the log's size.
        let last = MAX_ENTRIES as i64 + 4;
        let mut n = 2;
        while n <= last {
            let batch: Vec<AuditEntry> = (n..(n + 1 + n % 3).min(last + 1)).map(entry).collect();
            n += batch.len() as i64;
            append(&store, &batch, at(2)).await.unwrap();
        }
        let (newest, total) = recent(&store, 3, at(3), |_| true).await.unwrap();
        let seconds: Vec<i64> = newest.iter().map(|e| new_of(e).as_i64().unwrap()).collect();
        assert_eq!(seconds, [last, last - 1, last - 2]);
        // Whole chunks of the oldest were dropped (a chunk holds 98 to 100 of these
        // batches), and what is left is every entry from there on, in order.
        assert!(
            (MAX_ENTRIES - 3 * CHUNK_ENTRIES..=MAX_ENTRIES).contains(&total),
            "{total}"
        );
        let (all, shown) = recent(&store, MAX_ENTRIES, at(3), |_| true).await.unwrap();
        assert_eq!(shown, total);
        let first = last + 1 - total as i64;
        let expected: Vec<i64> = (first..=last).rev().collect();
        let read: Vec<i64> = all.iter().map(|e| new_of(e).as_i64().unwrap()).collect();
        assert_eq!(read, expected);
        // The chunks pushed out are deleted, the head names the newest.
        let current = head(&store, at(3)).await.unwrap();
        assert!(current >= MAX_CHUNKS, "{current}");
        for n in 0..=current {
            let kept = store
                .get(&keys::audit_chunk(n), at(3))
                .await
                .unwrap()
                .is_some();
            assert_eq!(kept, n + MAX_CHUNKS > current, "chunk {n} of {current}");
        }
        assert_eq!(newest[0].actor, "token:deadbeef");
        assert_eq!(newest[0].action, "baseline.set");
        assert_eq!(newest[0].scope.as_deref(), Some("sites:caukee"));
    }

    fn new_of(entry: &AuditEntry) -> serde_json::Value {
        let summary: serde_json::Value = serde_json::from_str(entry.summary.get()).unwrap();
        summary["new"].clone()
    }

    #[tokio::test]
    async fn an_unreadable_log_is_reported_and_never_overwritten() {
        for key in [keys::audit_chunk(0), keys::audit_head(), keys::audit()] {
            let store = MemoryStore::new();
            store.set(&key, b"[1, 2", None).await.unwrap();
            if key != keys::audit() {
                assert!(matches!(
                    append(&store, &[entry(0)], at(0)).await,
                    Err(AuditError::Unreadable { .. })
                ));
            }
            assert!(matches!(
                recent(&store, 1, at(0), |_| true).await,
                Err(AuditError::Unreadable { .. })
            ));
            assert_eq!(
                store.get(&key, at(0)).await.unwrap().as_deref(),
                Some(&b"[1, 2"[..]),
                "{key}"
            );
        }
    }

    /// A log written whole by an earlier version is read after the chunks, as their
    /// oldest part, and deleted once the chunks reach the log's size.
    #[tokio::test]
    async fn a_one_document_log_is_read_as_the_oldest_until_pushed_out() {
        let store = MemoryStore::new();
        let old = AuditDocument {
            format: FORMAT,
            entries: (0..3).map(entry).collect(),
        };
        store
            .set(&keys::audit(), &serde_json::to_vec(&old).unwrap(), None)
            .await
            .unwrap();
        append(&store, &[entry(3), entry(4)], at(5)).await.unwrap();
        let (all, total) = recent(&store, 10, at(5), |_| true).await.unwrap();
        let read: Vec<i64> = all.iter().map(|e| new_of(e).as_i64().unwrap()).collect();
        assert_eq!((read, total), (vec![4, 3, 2, 1, 0], 5));
        // Chunk 0 holds 3 … 102; the entry after the hundredth chunk pushes it out.
        for n in 5..=MAX_ENTRIES as i64 + 2 {
            append(&store, &[entry(n)], at(6)).await.unwrap();
        }
        assert!(store.get(&keys::audit(), at(6)).await.unwrap().is_some());
        append(&store, &[entry(MAX_ENTRIES as i64 + 3)], at(6))
            .await
            .unwrap();
        assert_eq!(store.get(&keys::audit(), at(6)).await.unwrap(), None);
        let (all, total) = recent(&store, MAX_ENTRIES, at(6), |_| true).await.unwrap();
        assert_eq!(total, MAX_ENTRIES - CHUNK_ENTRIES + 1);
        assert_eq!(new_of(all.last().unwrap()), 103);
    }

    /// Writers appending at once lose nothing: each entry is in the log once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_lose_nothing_across_chunks() {
        let store = std::sync::Arc::new(MemoryStore::new());
        let writers: Vec<_> = (0..4_i64)
            .map(|w| {
                let store = std::sync::Arc::clone(&store);
                tokio::spawn(async move {
                    for n in 0..150 {
                        append(&*store, &[entry(w * 1_000 + n)], at(1))
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap();
        }
        let (all, total) = recent(&*store, MAX_ENTRIES, at(2), |_| true).await.unwrap();
        assert_eq!(total, 600);
        let mut read: Vec<i64> = all.iter().map(|e| new_of(e).as_i64().unwrap()).collect();
        read.sort_unstable();
        let expected: Vec<i64> = (0..4_i64)
            .flat_map(|w| (0..150).map(move |n| w * 1_000 + n))
            .collect();
        assert_eq!(read, expected);
    }

    #[test]
    fn entries_read_back_and_name_actors_plainly() {
        let json = serde_json::to_string(&entry(7)).unwrap();
        let back: AuditEntry = serde_json::from_str(&json).unwrap();
        assert_eq!(back, entry(7));
        assert_eq!(Actor::Startup.to_string(), "startup");
        // Entries from a newer version with an unknown action still read.
        let newer =
            r#"{"at":"2026-11-30T17:00:00Z","action":"trust.revoke","actor":"token:00000000"}"#;
        assert_eq!(
            serde_json::from_str::<AuditEntry>(newer).unwrap().site,
            None
        );
    }
}
