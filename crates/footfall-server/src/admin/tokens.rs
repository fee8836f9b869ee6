//! The admin tokens: kept only as digests, compared in constant time, named in the audit
//! log by a fingerprint that reveals neither the token nor its digest, each with a
//! *scope*: an operator's token manages everything, a site's token only its own sites.
//!
//! Tokens come from `--admin-tokens` (operator tokens) and from a tokens file
//! (`--admin-tokens-file`, [`parse_tokens_file`]), read at start-up and again on
//! `SIGHUP`; the set in use is replaced whole ([`AdminTokens::replace`]), so several
//! tokens can be valid at once and a token is rotated without downtime: add the new one,
//! reload, hand it over, remove the old one, reload.

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use footfall::SiteId;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::audit::{Actor, TokenFingerprint};
use crate::setting::SettingError;

/// What a token may manage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every site, and the service-wide routes (creating and deleting sites).
    Operator,
    /// These sites only (never empty).
    Sites(Vec<SiteId>),
}

impl Scope {
    /// True when the token may read and manage `site`.
    pub fn covers(&self, site: &str) -> bool {
        match self {
            Scope::Operator => true,
            Scope::Sites(sites) => sites.iter().any(|own| own.as_str() == site),
        }
    }

    /// True for an operator's token.
    pub fn is_operator(&self) -> bool {
        matches!(self, Scope::Operator)
    }

    /// How the audit log and the logs name the scope: `operator` or `sites:a,b`.
    pub fn label(&self) -> String {
        match self {
            Scope::Operator => "operator".to_owned(),
            Scope::Sites(sites) => {
                let names: Vec<&str> = sites.iter().map(SiteId::as_str).collect();
                format!("sites:{}", names.join(","))
            }
        }
    }
}

/// One accepted token: its SHA-256 digest (never the token) and its scope.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenGrant {
    digest: [u8; 32],
    scope: Scope,
}

impl std::fmt::Debug for TokenGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The fingerprint only: never the digest, which is what a login is compared to.
        write!(
            f,
            "TokenGrant({} {})",
            fingerprint_of_digest(&self.digest),
            self.scope.label()
        )
    }
}

impl TokenGrant {
    /// An operator's token given in clear (`--admin-tokens`).
    pub fn operator(token: &str) -> TokenGrant {
        TokenGrant {
            digest: digest_of(token),
            scope: Scope::Operator,
        }
    }

    /// A grant of `scope` to the token given in clear.
    pub fn new(token: &str, scope: Scope) -> TokenGrant {
        TokenGrant {
            digest: digest_of(token),
            scope,
        }
    }

    /// Its fingerprint.
    pub fn fingerprint(&self) -> TokenFingerprint {
        fingerprint_of_digest(&self.digest)
    }

    /// Its scope.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }
}

/// The caller of an admin request: the fingerprint of the token it presented and that
/// token's scope. Handlers check the scope; the audit log records both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The token's fingerprint.
    pub fingerprint: TokenFingerprint,
    /// What the token may manage.
    pub scope: Arc<Scope>,
}

impl Caller {
    /// The actor audit entries name: the fingerprint and the scope.
    pub fn actor(&self) -> Actor {
        Actor::Token {
            fingerprint: self.fingerprint,
            scope: self.scope.label().into(),
        }
    }
}

#[derive(Clone)]
struct Entry {
    digest: [u8; 32],
    caller: Caller,
}

/// The accepted admin tokens, kept only as SHA-256 digests, replaced whole on reload.
pub struct AdminTokens {
    current: ArcSwap<Vec<Entry>>,
}

impl std::fmt::Debug for AdminTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print tokens or their digests.
        write!(f, "AdminTokens({} configured)", self.current.load().len())
    }
}

fn entries(grants: Vec<TokenGrant>) -> Vec<Entry> {
    grants
        .into_iter()
        .map(|grant| Entry {
            caller: Caller {
                fingerprint: fingerprint_of_digest(&grant.digest),
                scope: Arc::new(grant.scope),
            },
            digest: grant.digest,
        })
        .collect()
}

impl AdminTokens {
    /// Operator tokens given in clear (empty entries ignored).
    pub fn new(tokens: &[String]) -> Self {
        AdminTokens::with_grants(operator_grants(tokens))
    }

    /// The tokens of `grants`.
    pub fn with_grants(grants: Vec<TokenGrant>) -> Self {
        AdminTokens {
            current: ArcSwap::from_pointee(entries(grants)),
        }
    }

    /// Replaces every token at once (a reload): requests already authenticated finish,
    /// the next ones are checked against `grants`.
    pub fn replace(&self, grants: Vec<TokenGrant>) {
        self.current.store(Arc::new(entries(grants)));
    }

    /// True when no token is configured (the admin API then refuses everything).
    pub fn is_empty(&self) -> bool {
        self.current.load().is_empty()
    }

    /// How many tokens are accepted.
    pub fn len(&self) -> usize {
        self.current.load().len()
    }

    /// Checks a presented token like [`identify`](Self::identify).
    pub fn accepts(&self, presented: &str) -> bool {
        self.identify(presented).is_some()
    }

    /// Checks a presented token and returns the caller it identifies. The presented token
    /// is hashed first, so the comparison time depends on neither the token's length nor
    /// how much of it matches; every configured digest is compared and the match picked
    /// without a data-dependent branch, so neither does it reveal which one matched.
    pub fn identify(&self, presented: &str) -> Option<Caller> {
        let digest = digest_of(presented);
        let entries = self.current.load();
        let mut matched = subtle::Choice::from(0);
        let mut index = 0u32;
        for (candidate_index, candidate) in entries.iter().enumerate() {
            let this = candidate.digest.ct_eq(&digest);
            let candidate_index = u32::try_from(candidate_index).unwrap_or(u32::MAX);
            index.conditional_assign(&candidate_index, this);
            matched |= this;
        }
        if !bool::from(matched) {
            return None;
        }
        entries
            .get(index as usize)
            .map(|entry| entry.caller.clone())
    }

    /// The caller whose token has `fingerprint` and whose digest passes `check` (a
    /// session's MAC over the digest, by the statistics page), if one is still configured: a
    /// session ends when its token is removed.
    pub fn find(
        &self,
        fingerprint: TokenFingerprint,
        check: impl Fn(&[u8; 32]) -> bool,
    ) -> Option<Caller> {
        self.current
            .load()
            .iter()
            .filter(|entry| entry.caller.fingerprint == fingerprint)
            .find(|entry| check(&entry.digest))
            .map(|entry| entry.caller.clone())
    }
}

/// Operator grants of tokens given in clear (empty entries ignored).
pub fn operator_grants(tokens: &[String]) -> Vec<TokenGrant> {
    tokens
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .map(TokenGrant::operator)
        .collect()
}

/// The SHA-256 digest of a token, as kept and compared.
pub fn digest_of(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The fingerprint of a token, from its digest: it names a token in the audit log
/// without revealing it (the token's digest is hashed again, so not even the digest
/// compared at login can be recovered).
pub fn fingerprint_of_digest(digest: &[u8; 32]) -> TokenFingerprint {
    let again = Sha256::digest(digest);
    TokenFingerprint([again[0], again[1], again[2], again[3]])
}

/// The shortest token accepted: shorter ones could be guessed.
pub const MIN_TOKEN_CHARS: usize = 16;

/// The tokens file: `[[tokens]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    #[serde(default)]
    tokens: Vec<TokenEntry>,
}

/// One `[[tokens]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    /// `sha256:` and the token's SHA-256 in hex (what `footfall admin-token new` prints).
    #[serde(default)]
    digest: Option<String>,
    /// A file holding the token itself (a mounted secret), relative to the tokens file.
    #[serde(default)]
    token_file: Option<String>,
    /// The sites the token manages.
    #[serde(default)]
    sites: Option<Vec<String>>,
    /// An operator's token: every site.
    #[serde(default)]
    operator: bool,
    /// Who holds it; for people reading the file only.
    #[serde(default, rename = "note")]
    _note: String,
}

/// Parses a tokens file. `dir` is where `token_file` paths are relative to. Errors name
/// the entry and the setting (`tokens[2].digest`), never a token or a digest.
///
/// ```toml
/// [[tokens]]
/// digest = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
/// sites = ["caukee"]
/// note = "Cầu Kè district webmaster"
///
/// [[tokens]]
/// token_file = "/run/secrets/footfall-operator"
/// operator = true
/// ```
pub fn parse_tokens_file(text: &str, dir: &Path) -> Result<Vec<TokenGrant>, SettingError> {
    let file: TokensFile =
        toml::from_str(text).map_err(|e| SettingError::new("tokens file", e.to_string()))?;
    let mut grants: Vec<TokenGrant> = Vec::with_capacity(file.tokens.len());
    for (index, entry) in file.tokens.into_iter().enumerate() {
        let at = |name: &str| format!("tokens[{index}].{name}");
        let digest = match (&entry.digest, &entry.token_file) {
            (Some(digest), None) => parse_digest(digest).ok_or_else(|| {
                SettingError::new(
                    at("digest"),
                    "expected sha256: and 64 hex digits (footfall admin-token new prints it)",
                )
            })?,
            (None, Some(path)) => {
                let path = dir.join(path);
                let token = std::fs::read_to_string(&path).map_err(|e| {
                    SettingError::new(at("token_file"), format!("{}: {e}", path.display()))
                })?;
                let token = token.trim();
                if token.chars().count() < MIN_TOKEN_CHARS {
                    return Err(SettingError::new(
                        at("token_file"),
                        format!(
                            "{}: the token is too short to be secret; use {MIN_TOKEN_CHARS} characters or more",
                            path.display()
                        ),
                    ));
                }
                digest_of(token)
            }
            _ => {
                return Err(SettingError::new(
                    at("digest"),
                    "give the token's digest or a token_file, one of the two",
                ));
            }
        };
        let scope = match (entry.operator, entry.sites) {
            (true, None) => Scope::Operator,
            (false, Some(sites)) if !sites.is_empty() => {
                let mut ids = Vec::with_capacity(sites.len());
                for (i, site) in sites.iter().enumerate() {
                    let id = SiteId::new(site).map_err(|e| {
                        SettingError::new(at(&format!("sites[{i}]")), e.to_string())
                    })?;
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
                Scope::Sites(ids)
            }
            (true, Some(_)) => {
                return Err(SettingError::new(
                    at("operator"),
                    "an operator's token manages every site: drop its sites list",
                ));
            }
            (false, _) => {
                return Err(SettingError::new(
                    at("sites"),
                    "list the sites the token manages, or set operator = true",
                ));
            }
        };
        if grants.iter().any(|grant| grant.digest == digest) {
            return Err(SettingError::new(
                at("digest"),
                "the same token is listed twice",
            ));
        }
        grants.push(TokenGrant { digest, scope });
    }
    Ok(grants)
}

/// Reads and parses the tokens file at `path`.
pub fn read_tokens_file(path: &Path) -> Result<Vec<TokenGrant>, SettingError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SettingError::new("tokens file", e.to_string()))?;
    parse_tokens_file(&text, path.parent().unwrap_or(Path::new(".")))
}

fn parse_digest(text: &str) -> Option<[u8; 32]> {
    let hex_digits = text.trim().strip_prefix("sha256:")?;
    let mut digest = [0u8; 32];
    hex::decode_to_slice(hex_digits, &mut digest).ok()?;
    Some(digest)
}

/// The tokens file line of a token: `sha256:` and its digest in hex.
pub fn digest_line(token: &str) -> String {
    format!("sha256:{}", hex::encode(digest_of(token)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tokens_file_reads_digests_files_and_scopes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("operator"), "operator-token-0123456789\n").unwrap();
        let text = format!(
            "[[tokens]]\ndigest = \"{}\"\nsites = [\"caukee\", \"tracu\", \"caukee\"]\nnote = \"Cầu Kè\"\n\n\
             [[tokens]]\ntoken_file = \"operator\"\noperator = true\n",
            digest_line("caukee-webmaster-token-abc")
        );
        let grants = parse_tokens_file(&text, dir.path()).unwrap();
        let tokens = AdminTokens::with_grants(grants);
        let caukee = tokens.identify("caukee-webmaster-token-abc").unwrap();
        assert_eq!(caukee.scope.label(), "sites:caukee,tracu");
        assert!(caukee.scope.covers("tracu") && !caukee.scope.covers("demo"));
        let operator = tokens.identify("operator-token-0123456789").unwrap();
        assert!(operator.scope.is_operator());
        assert!(tokens.identify("sha256:whatever").is_none());
    }

    #[test]
    fn tokens_file_errors_name_the_entry_and_never_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let good = digest_line("a-token-long-enough-1234");
        std::fs::write(dir.path().join("short"), "short\n").unwrap();
        let cases = [
            (
                format!("[[tokens]]\ndigest = \"{good}\"\n"),
                "tokens[0].sites",
            ),
            (
                format!("[[tokens]]\ndigest = \"{good}\"\nsites = []\n"),
                "tokens[0].sites",
            ),
            (
                format!("[[tokens]]\ndigest = \"{good}\"\noperator = true\nsites = [\"a\"]\n"),
                "tokens[0].operator",
            ),
            (
                "[[tokens]]\ndigest = \"sha256:abcd\"\noperator = true\n".to_owned(),
                "tokens[0].digest",
            ),
            (
                format!("[[tokens]]\ndigest = \"{good}\"\nsites = [\"Bad Site\"]\n"),
                "tokens[0].sites[0]",
            ),
            (
                "[[tokens]]\noperator = true\n".to_owned(),
                "tokens[0].digest",
            ),
            (
                "[[tokens]]\ntoken_file = \"short\"\noperator = true\n".to_owned(),
                "tokens[0].token_file",
            ),
            (
                "[[tokens]]\ntoken_file = \"missing\"\noperator = true\n".to_owned(),
                "tokens[0].token_file",
            ),
            (
                format!(
                    "[[tokens]]\ndigest = \"{good}\"\noperator = true\n[[tokens]]\ndigest = \"{good}\"\nsites = [\"a\"]\n"
                ),
                "tokens[1].digest",
            ),
            (
                format!("[[tokens]]\ndigest = \"{good}\"\noperator = true\ncolour = 1\n"),
                "tokens file",
            ),
        ];
        for (text, setting) in cases {
            let error = parse_tokens_file(&text, dir.path()).unwrap_err();
            assert_eq!(error.setting, setting, "{text}: {error}");
            assert!(!error.to_string().contains(&good[7..]), "{error}");
        }
    }

    #[test]
    fn a_reload_replaces_every_token_at_once() {
        let tokens = AdminTokens::new(&["old-operator-token-1234".to_owned()]);
        assert!(tokens.accepts("old-operator-token-1234"));
        tokens.replace(vec![
            TokenGrant::operator("new-operator-token-1234"),
            TokenGrant::new(
                "caukee-token-123456789",
                Scope::Sites(vec![SiteId::new("caukee").unwrap()]),
            ),
        ]);
        assert!(!tokens.accepts("old-operator-token-1234"));
        assert!(tokens.accepts("new-operator-token-1234"));
        let caller = tokens.identify("caukee-token-123456789").unwrap();
        assert_eq!(
            caller.fingerprint,
            fingerprint_of_digest(&digest_of("caukee-token-123456789"))
        );
        assert_eq!(tokens.len(), 2);
        let digest = digest_of("caukee-token-123456789");
        assert_eq!(
            tokens.find(caller.fingerprint, |d| *d == digest),
            Some(caller.clone())
        );
        assert_eq!(tokens.find(caller.fingerprint, |_| false), None);
    }
}
