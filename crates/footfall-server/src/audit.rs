//! The audit log: every admin change, who made it and what it changed.
//!
//! Entries are appended to one JSON document under [`keys::audit`],
//! `{"format": 1, "entries": [oldest … newest]}`, through the same compare-and-swap loop
//! as the registry ([`read_modify_write`]), so entries from several instances are never
//! lost; the document keeps the last [`MAX_ENTRIES`]. Each entry is also logged at INFO
//! with structured fields.
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

/// How many entries the log keeps; older ones are dropped. At a few hundred bytes each
/// this bounds the document to a few MB, rewritten only on admin changes (rare).
pub const MAX_ENTRIES: usize = 10_000;

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
    /// What changed (old and new values, or the settings), kept as its JSON text: the
    /// log is read and written whole on every append, and a parsed tree of every
    /// entry's summary made that cost most of an admin write (registering 1,000 sites
    /// one by one took 55 s on Redis and 60 MB of heap).
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

fn parse(bytes: &[u8]) -> Result<AuditDocument, AuditError> {
    let unreadable = |message: String| AuditError::Unreadable {
        key: keys::audit().to_string(),
        message,
    };
    let document: AuditDocument = serde_json::from_slice(bytes)
        .map_err(|e| unreadable(format!("not an audit document: {e}")))?;
    if document.format != FORMAT {
        return Err(unreadable(format!(
            "audit format {} is not understood by this version (it reads {FORMAT})",
            document.format
        )));
    }
    Ok(document)
}

/// Appends `entries` (in order) to the stored log, dropping the oldest beyond
/// [`MAX_ENTRIES`].
pub async fn append<S: Store + ?Sized>(
    store: &S,
    entries: &[AuditEntry],
    now: Timestamp,
) -> Result<(), AuditError> {
    if entries.is_empty() {
        return Ok(());
    }
    let result = read_modify_write(store, &keys::audit(), now, |current| {
        let mut document = match current {
            None => AuditDocument {
                format: FORMAT,
                entries: Vec::new(),
            },
            Some(bytes) => parse(bytes)?,
        };
        document.entries.extend_from_slice(entries);
        let excess = document.entries.len().saturating_sub(MAX_ENTRIES);
        document.entries.drain(..excess);
        let bytes = serde_json::to_vec(&document).map_err(|e| AuditError::Unreadable {
            key: keys::audit().to_string(),
            message: e.to_string(),
        })?;
        Ok(Step::Write(bytes, ()))
    })
    .await;
    match result {
        Ok(()) => Ok(()),
        Err(CasError::Rejected(error)) => Err(error),
        Err(CasError::Store(error)) => Err(AuditError::Store(error)),
        Err(CasError::Contended { attempts }) => Err(AuditError::Contended { attempts }),
    }
}

/// The most recent `limit` entries that `shown` keeps, newest first, and how many it
/// keeps in all.
pub async fn recent<S: Store + ?Sized>(
    store: &S,
    limit: usize,
    now: Timestamp,
    shown: impl Fn(&AuditEntry) -> bool,
) -> Result<(Vec<AuditEntry>, usize), AuditError> {
    let Some(bytes) = store.get(&keys::audit(), now).await? else {
        return Ok((Vec::new(), 0));
    };
    let document = parse(&bytes)?;
    let mut kept: Vec<AuditEntry> = document.entries.into_iter().filter(|e| shown(e)).collect();
    let total = kept.len();
    kept.reverse();
    kept.truncate(limit);
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
        let many: Vec<AuditEntry> = (2..MAX_ENTRIES as i64 + 5).map(entry).collect();
        append(&store, &many, at(2)).await.unwrap();
        let (newest, total) = recent(&store, 3, at(3), |_| true).await.unwrap();
        assert_eq!(total, MAX_ENTRIES);
        let seconds: Vec<i64> = newest.iter().map(|e| new_of(e).as_i64().unwrap()).collect();
        let last = MAX_ENTRIES as i64 + 4;
        assert_eq!(seconds, [last, last - 1, last - 2]);
        let (all, _) = recent(&store, MAX_ENTRIES, at(3), |_| true).await.unwrap();
        // The five oldest (0 … 4) were dropped.
        assert_eq!(new_of(all.last().unwrap()), 5);
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
        let store = MemoryStore::new();
        store.set(&keys::audit(), b"[1, 2", None).await.unwrap();
        assert!(matches!(
            append(&store, &[entry(0)], at(0)).await,
            Err(AuditError::Unreadable { .. })
        ));
        assert!(matches!(
            recent(&store, 1, at(0), |_| true).await,
            Err(AuditError::Unreadable { .. })
        ));
        assert_eq!(
            store.get(&keys::audit(), at(0)).await.unwrap().as_deref(),
            Some(&b"[1, 2"[..])
        );
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
