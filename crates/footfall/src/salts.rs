//! Visitor-id salts, shared by every service instance through the store, and stored only
//! sealed with a deployment secret.
//!
//! Each rotation period has one random salt under `ff:{site}:salt:<period>`. The first
//! instance to need it creates it with [`Store::set_if_absent`]; every other instance
//! reads the same value, so all instances derive the same visitor ids. Salts expire 48 h
//! after their period starts, so a salt is gone a day after it stops being used and no
//! visitor id can be recomputed from stored data after that.
//!
//! # Sealing
//!
//! A salt kept in plain beside the ids it protects would let anyone who can read the store
//! (a Redis replica, a backup of the store file) match ids to IPv4 addresses by trying
//! all four billion of them. So the store only ever holds salts *sealed*: encrypted and
//! authenticated with XChaCha20-Poly1305 under a key derived from a deployment secret
//! ([`SaltSecrets`]) that lives outside the store. Store access alone then reveals nothing
//! about the salts; the secret alone reveals nothing about the visitors.
//!
//! A sealed value is 80 bytes:
//!
//! ```text
//! "ffs1"        4 bytes  format tag
//! key id        4 bytes  which secret sealed it (see SaltSecrets::key_id)
//! nonce        24 bytes  random
//! ciphertext   48 bytes  the 32-byte salt and a 16-byte Poly1305 tag
//! ```
//!
//! The tag authenticates the format tag, the key id and the store key the value sits
//! under, so a sealed salt moved to another site's or period's key does not open.
//!
//! Several secrets can be accepted at once (the current one seals, every one opens), so
//! the secret can be rotated without a moment where an instance cannot read what
//! another wrote; the runbook in `deploy/README.md` gives the steps.
//!
//! Salts written in plain by earlier versions (exactly 32 bytes) are never used: the
//! current period's is replaced by a fresh sealed one (compare-and-swap, so instances
//! agree on the replacement) and the previous period's is deleted. Visitors seen before
//! the upgrade count once more that day; in exchange no plain salt stays in the store,
//! and nobody who can write to the store can plant a salt they know.

use std::fmt;
use std::net::IpAddr;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use jiff::Timestamp;

use crate::Error;
use crate::identity::{IdentityError, Salt, SaltPeriod, VisitorId};
use crate::keys::{self, Key};
use crate::rules::CountingRules;
use crate::site::SiteId;
use crate::store::Store;

/// The deployment secrets salts are sealed with: the current one seals every new salt,
/// and it and every other accepted one open stored salts.
///
/// Built from secret text (at least [`SaltSecrets::MIN_SECRET_LEN`] bytes, e.g.
/// `openssl rand -hex 32`); the text itself is not kept, only a key derived from it and a
/// short key id. `Debug` shows only the key ids.
#[derive(Clone)]
pub struct SaltSecrets {
    /// The first key seals; all of them open.
    keys: Vec<SealingKey>,
}

#[derive(Clone)]
struct SealingKey {
    id: [u8; 4],
    cipher: XChaCha20Poly1305,
}

/// Why a salt could not be read from the store.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SaltError {
    /// The salt was sealed with a secret this instance does not accept.
    #[error(
        "the salt at {key} was sealed with secret {key_id}, which is not among the accepted salt secrets ({accepted})"
    )]
    UnknownSecret {
        /// The store key.
        key: String,
        /// The key id found in the value.
        key_id: String,
        /// The key ids this instance accepts, comma-separated.
        accepted: String,
    },
    /// The value names an accepted secret but does not open with it: altered, moved from
    /// another key, or sealed with a different secret that shares the id.
    #[error("the salt at {key} does not open with secret {key_id}: altered or moved")]
    Unseal {
        /// The store key.
        key: String,
        /// The key id found in the value.
        key_id: String,
    },
    /// The value is neither a sealed salt nor a plain one.
    #[error("the value at {key} is not a salt ({len} bytes)")]
    Malformed {
        /// The store key.
        key: String,
        /// Its length.
        len: usize,
    },
    /// A plain salt reappeared while it was being replaced (an instance of an earlier
    /// version still writes them).
    #[error(
        "the salt at {key} is stored in plain again: an instance of an earlier version still writes salts; upgrade it"
    )]
    PlainRewritten {
        /// The store key.
        key: String,
    },
}

/// Why secret text cannot be a salt secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// No secret was given.
    #[error("no secret given")]
    Empty,
    /// A secret is too short to resist guessing.
    #[error(
        "secret {position} has {len} bytes; use at least {min} random ones (openssl rand -hex 32)"
    )]
    TooShort {
        /// 1 for the current secret, 2 and on for the others.
        position: usize,
        /// Its length.
        len: usize,
        /// The minimum.
        min: usize,
    },
    /// Two accepted secrets are the same.
    #[error("secret {position} repeats an earlier one")]
    Repeated {
        /// Its position, from 1.
        position: usize,
    },
}

/// What a stored salt value turned out to be.
enum Opened {
    Sealed(Salt),
    /// Exactly 32 bytes: a salt an earlier version stored in plain.
    Plain,
}

/// A site's current salt and, when it still exists, the previous one.
#[derive(Clone, Debug)]
pub struct SiteSalts {
    site: SiteId,
    period: SaltPeriod,
    current: Salt,
    previous: Option<Salt>,
    plain_replaced: bool,
}

/// Both ids of one hit: under the current salt, and under the previous salt while a visit
/// begun before the rotation may still be open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The id under the current salt.
    pub visitor: VisitorId,
    /// The id under the previous salt, within one visit timeout after the rotation.
    pub previous_visitor: Option<VisitorId>,
}

/// Format tag of a sealed salt (version 1 of the layout in the module docs).
const SEALED_TAG: &[u8; 4] = b"ffs1";
const KEY_ID_LEN: usize = 4;
const NONCE_LEN: usize = 24;
const SALT_LEN: usize = 32;
const AEAD_TAG_LEN: usize = 16;
const SEALED_LEN: usize = SEALED_TAG.len() + KEY_ID_LEN + NONCE_LEN + SALT_LEN + AEAD_TAG_LEN;
/// BLAKE3 key-derivation contexts: the sealing key and the public key id come from the
/// secret by different contexts, so the id says nothing about the key.
const KEY_CONTEXT: &str = "footfall 2026-12 salt sealing key";
const KEY_ID_CONTEXT: &str = "footfall 2026-12 salt sealing key id";

impl SaltSecrets {
    /// The shortest secret accepted, in bytes: 32 random characters carry well over the
    /// 128 bits that make guessing hopeless, and a hex- or base64-encoded 32-byte random
    /// value is longer still.
    pub const MIN_SECRET_LEN: usize = 32;

    /// Secrets from their text: `current` seals, it and every one of `others` open (the
    /// previous secret after a rotation, or the next one before it).
    ///
    /// # Errors
    ///
    /// [`SecretError`] when a secret is shorter than [`Self::MIN_SECRET_LEN`] or repeats.
    pub fn new(current: &[u8], others: &[&[u8]]) -> Result<Self, SecretError> {
        let all: Vec<&[u8]> = std::iter::once(current)
            .chain(others.iter().copied())
            .collect();
        for (index, secret) in all.iter().enumerate() {
            let position = index + 1;
            if secret.len() < Self::MIN_SECRET_LEN {
                return Err(SecretError::TooShort {
                    position,
                    len: secret.len(),
                    min: Self::MIN_SECRET_LEN,
                });
            }
            if all[..index].contains(secret) {
                return Err(SecretError::Repeated { position });
            }
        }
        Ok(SaltSecrets {
            keys: all.into_iter().map(SealingKey::derive).collect(),
        })
    }

    /// Parses the text of a secrets file or variable: secrets separated by newlines or
    /// commas (so a secret holds neither), the first the current one; blank lines and
    /// lines starting with `#` are ignored, and spaces around a secret are trimmed.
    ///
    /// # Errors
    ///
    /// [`SecretError::Empty`] when the text holds no secret, else as [`SaltSecrets::new`].
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let secrets: Vec<&[u8]> = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.starts_with('#'))
            .flat_map(|line| line.split(','))
            .map(str::trim)
            .filter(|secret| !secret.is_empty())
            .map(str::as_bytes)
            .collect();
        let (current, others) = secrets.split_first().ok_or(SecretError::Empty)?;
        SaltSecrets::new(current, others)
    }

    /// A random secret, for a store that lives and dies with the process (memory), and
    /// the text to keep it by (64 hex digits) when a store outlives the process.
    ///
    /// # Errors
    ///
    /// [`IdentityError::RandomUnavailable`] when the operating system has no randomness.
    pub fn generate() -> Result<(Self, String), IdentityError> {
        let mut bytes = [0_u8; 32];
        getrandom::fill(&mut bytes).map_err(|error| IdentityError::RandomUnavailable {
            reason: error.to_string(),
        })?;
        let text = hex::encode(bytes);
        let secrets =
            SaltSecrets::new(text.as_bytes(), &[]).expect("64 hex digits are a long enough secret");
        Ok((secrets, text))
    }

    /// The id of the current secret, 8 hex digits: safe to log, it names the secret in
    /// sealed values and errors without revealing anything about it.
    pub fn key_id(&self) -> String {
        hex::encode(self.keys[0].id)
    }

    /// The ids of every accepted secret, the current one first.
    pub fn key_ids(&self) -> Vec<String> {
        self.keys.iter().map(|key| hex::encode(key.id)).collect()
    }

    /// Seals `salt` for storing under `key` (the layout in the module docs).
    ///
    /// # Errors
    ///
    /// [`IdentityError::RandomUnavailable`] when no nonce can be drawn.
    pub fn seal(&self, key: &Key, salt: &Salt) -> Result<Vec<u8>, IdentityError> {
        let sealing = &self.keys[0];
        let mut nonce = [0_u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|error| IdentityError::RandomUnavailable {
            reason: error.to_string(),
        })?;
        let header = header(&sealing.id);
        let ciphertext = sealing
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: salt.as_bytes(),
                    aad: &associated_data(&header, key),
                },
            )
            .expect("XChaCha20-Poly1305 seals 32 bytes");
        let mut sealed = Vec::with_capacity(SEALED_LEN);
        sealed.extend_from_slice(&header);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// Opens a value stored under `key` by [`SaltSecrets::seal`].
    ///
    /// # Errors
    ///
    /// [`SaltError`]: not a sealed salt (a plain one included), an unknown secret, or a
    /// value that does not authenticate.
    pub fn open(&self, key: &Key, stored: &[u8]) -> Result<Salt, SaltError> {
        match self.open_any(key, stored)? {
            Opened::Sealed(salt) => Ok(salt),
            Opened::Plain => Err(SaltError::Malformed {
                key: key.to_string(),
                len: stored.len(),
            }),
        }
    }

    fn open_any(&self, key: &Key, stored: &[u8]) -> Result<Opened, SaltError> {
        if stored.len() == SALT_LEN {
            return Ok(Opened::Plain);
        }
        if stored.len() != SEALED_LEN || !stored.starts_with(SEALED_TAG) {
            return Err(SaltError::Malformed {
                key: key.to_string(),
                len: stored.len(),
            });
        }
        let (header_bytes, rest) = stored.split_at(SEALED_TAG.len() + KEY_ID_LEN);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let id: [u8; KEY_ID_LEN] = header_bytes[SEALED_TAG.len()..]
            .try_into()
            .expect("the header ends with the key id");
        let nonce: [u8; NONCE_LEN] = nonce.try_into().expect("split at the nonce length");
        let aad = associated_data(&header(&id), key);
        let mut candidates = self.keys.iter().filter(|k| k.id == id).peekable();
        if candidates.peek().is_none() {
            return Err(SaltError::UnknownSecret {
                key: key.to_string(),
                key_id: hex::encode(id),
                accepted: self.key_ids().join(","),
            });
        }
        // Ids are 32 bits: two accepted secrets may share one, so try each that does.
        for candidate in candidates {
            let opened = candidate.cipher.decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            );
            if let Ok(plain) = opened {
                let bytes: [u8; SALT_LEN] =
                    plain
                        .as_slice()
                        .try_into()
                        .map_err(|_| SaltError::Malformed {
                            key: key.to_string(),
                            len: stored.len(),
                        })?;
                return Ok(Opened::Sealed(Salt::from_bytes(bytes)));
            }
        }
        Err(SaltError::Unseal {
            key: key.to_string(),
            key_id: hex::encode(id),
        })
    }

    /// Fetches (creating when needed) the salt of the period containing `now`, and the
    /// previous period's salt if it is still stored.
    ///
    /// A salt stored in plain by an earlier version is not used: the current period's is
    /// replaced by a fresh sealed salt ([`SiteSalts::replaced_plain_salt`] says so), the
    /// previous period's is deleted.
    ///
    /// # Errors
    ///
    /// The store's errors, [`SaltError`] for a stored salt that does not open with these
    /// secrets, and [`IdentityError`] when no randomness is available.
    pub async fn load<S: Store>(
        &self,
        store: &S,
        site: &SiteId,
        rules: &CountingRules,
        now: Timestamp,
    ) -> Result<SiteSalts, Error> {
        let rotation = rules.salt_rotation();
        let period = rotation.period(rules.calendar(), now);
        let key = keys::salt(site, &period.id);
        let candidate = Salt::generate()?;
        let sealed = self.seal(&key, &candidate)?;
        let expires = Some(period.expires_at());
        let stored = store.set_if_absent(&key, &sealed, expires, now).await?;
        let (current, plain_replaced) = match self.open_any(&key, &stored)? {
            Opened::Sealed(salt) => (salt, false),
            Opened::Plain => {
                // Remove exactly that plain value (another instance may already have
                // replaced it), then create as if it had never been: every instance
                // ends up with the same sealed salt.
                store
                    .compare_and_swap(&key, Some(&stored), None, now)
                    .await?;
                let stored = store.set_if_absent(&key, &sealed, expires, now).await?;
                match self.open_any(&key, &stored)? {
                    Opened::Sealed(salt) => (salt, true),
                    Opened::Plain => {
                        return Err(SaltError::PlainRewritten {
                            key: key.to_string(),
                        }
                        .into());
                    }
                }
            }
        };

        let previous_period = rotation.previous_period(rules.calendar(), now);
        let previous_key = keys::salt(site, &previous_period.id);
        let previous = match store.get(&previous_key, now).await? {
            None => None,
            Some(stored) => match self.open_any(&previous_key, &stored)? {
                Opened::Sealed(salt) => Some(salt),
                Opened::Plain => {
                    store
                        .compare_and_swap(&previous_key, Some(&stored), None, now)
                        .await?;
                    None
                }
            },
        };
        Ok(SiteSalts {
            site: site.clone(),
            period,
            current,
            previous,
            plain_replaced,
        })
    }

    /// Replaces the current period's salt with a fresh one, at once. Visits open at that
    /// moment end (their visitors get new ids); use it when a salt may have leaked, or to
    /// replace a salt sealed with a secret that is lost. Other instances pick the new
    /// salt up when they next [`load`](Self::load).
    ///
    /// # Errors
    ///
    /// The store's errors, and [`IdentityError`] when no randomness is available.
    pub async fn rotate_now<S: Store>(
        &self,
        store: &S,
        site: &SiteId,
        rules: &CountingRules,
        now: Timestamp,
    ) -> Result<(), Error> {
        let period = rules.salt_rotation().period(rules.calendar(), now);
        let key = keys::salt(site, &period.id);
        let sealed = self.seal(&key, &Salt::generate()?)?;
        store.set(&key, &sealed, Some(period.expires_at())).await?;
        Ok(())
    }

    /// A fixed, publicly known secret for tests, so salts made in one test call open in
    /// the next. Never for a real deployment: anyone can read it here.
    #[cfg(any(test, feature = "conformance"))]
    pub fn for_tests() -> Self {
        SaltSecrets::new(
            b"footfall test secret: public, never use it in a deployment",
            &[],
        )
        .expect("long enough")
    }
}

impl SealingKey {
    fn derive(secret: &[u8]) -> SealingKey {
        let material = blake3::derive_key(KEY_CONTEXT, secret);
        let id_material = blake3::derive_key(KEY_ID_CONTEXT, secret);
        SealingKey {
            id: [
                id_material[0],
                id_material[1],
                id_material[2],
                id_material[3],
            ],
            cipher: XChaCha20Poly1305::new(&material.into()),
        }
    }
}

impl fmt::Debug for SaltSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaltSecrets")
            .field("key_ids", &self.key_ids())
            .finish()
    }
}

fn header(id: &[u8; KEY_ID_LEN]) -> [u8; SEALED_TAG.len() + KEY_ID_LEN] {
    let mut header = [0_u8; SEALED_TAG.len() + KEY_ID_LEN];
    header[..SEALED_TAG.len()].copy_from_slice(SEALED_TAG);
    header[SEALED_TAG.len()..].copy_from_slice(id);
    header
}

/// What the Poly1305 tag covers besides the salt: the header and the store key.
fn associated_data(header: &[u8], key: &Key) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + key.as_bytes().len());
    aad.extend_from_slice(header);
    aad.extend_from_slice(key.as_bytes());
    aad
}

/// [`SaltSecrets::load`] with [`SaltSecrets::for_tests`], for tests that only need a
/// site's salt entries to exist (the store conformance suite, the migration tests).
#[cfg(any(test, feature = "conformance"))]
pub async fn load<S: Store>(
    store: &S,
    site: &SiteId,
    rules: &CountingRules,
    now: Timestamp,
) -> Result<SiteSalts, Error> {
    SaltSecrets::for_tests().load(store, site, rules, now).await
}

impl SiteSalts {
    /// The period these salts are current for.
    pub fn period(&self) -> &SaltPeriod {
        &self.period
    }

    /// True when this load found the period's salt stored in plain by an earlier
    /// version and replaced it with a sealed one.
    pub fn replaced_plain_salt(&self) -> bool {
        self.plain_replaced
    }

    /// True when `at` falls in the current period (otherwise [`SaltSecrets::load`]
    /// again).
    pub fn covers(&self, at: Timestamp) -> bool {
        self.period.start <= at && at < self.period.end
    }

    /// Derives a hit's visitor ids. The previous salt's id is included during the first
    /// visit timeout of the period, so a visit open across the rotation is not counted
    /// twice.
    pub fn identify(
        &self,
        rules: &CountingRules,
        ip: IpAddr,
        user_agent: &str,
        at: Timestamp,
    ) -> Identity {
        let site = self.site.as_str();
        let truncation = rules.ip_truncation();
        let visitor = VisitorId::derive(&self.current, site, ip, user_agent, truncation);
        // A hit stamped just before the period began gives a negative duration, which is
        // within the grace too.
        let within_grace = at.duration_since(self.period.start) < rules.visit_timeout();
        let previous_visitor = self
            .previous
            .as_ref()
            .filter(|_| within_grace)
            .map(|previous| VisitorId::derive(previous, site, ip, user_agent, truncation));
        Identity {
            visitor,
            previous_visitor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    const SECRET_A: &str = "8d1c0a9f0d7e4b2a9c6e3f1b5a7d2c4e8f0a1b3c5d7e9f2a4b6c8d0e1f3a5b7c";
    const SECRET_B: &str = "0f9e8d7c6b5a49382716050f1e2d3c4b5a69788796a5b4c3d2e1f00112233445";

    fn secrets(text: &str) -> SaltSecrets {
        SaltSecrets::parse(text).unwrap()
    }

    fn site() -> SiteId {
        SiteId::new("caukee").unwrap()
    }

    fn now() -> Timestamp {
        "2026-11-30T03:00:00Z".parse().unwrap()
    }

    fn current_key(rules: &CountingRules) -> Key {
        let period = rules.salt_rotation().period(rules.calendar(), now());
        keys::salt(&site(), &period.id)
    }

    fn previous_key(rules: &CountingRules) -> Key {
        let period = rules
            .salt_rotation()
            .previous_period(rules.calendar(), now());
        keys::salt(&site(), &period.id)
    }

    fn ip() -> IpAddr {
        "203.0.113.7".parse().unwrap()
    }

    #[tokio::test]
    async fn the_store_holds_the_salt_only_sealed() {
        let store = MemoryStore::new();
        let rules = CountingRules::default();
        let salts = secrets(SECRET_A)
            .load(&store, &site(), &rules, now())
            .await
            .unwrap();
        let stored = store
            .get(&current_key(&rules), now())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.len(), SEALED_LEN);
        assert!(stored.starts_with(SEALED_TAG));
        let salt = salts.current.as_bytes();
        assert!(
            !stored.windows(salt.len()).any(|window| window == salt),
            "the stored value contains the salt"
        );
        // What store access alone allows: trying the stored bytes as the salt (or any
        // 32 of them) does not give the visitor's id.
        let id = salts.identify(&rules, ip(), "UA", now()).visitor;
        for start in 0..=stored.len() - 32 {
            let guess = Salt::from_bytes(stored[start..start + 32].try_into().unwrap());
            let guessed = VisitorId::derive(&guess, "caukee", ip(), "UA", Default::default());
            assert_ne!(guessed, id, "the salt is readable at offset {start}");
        }
        // The same secret opens it, to the salt in use.
        let opened = secrets(SECRET_A)
            .open(&current_key(&rules), &stored)
            .unwrap();
        assert_eq!(&opened, &salts.current);
    }

    #[tokio::test]
    async fn a_wrong_secret_an_altered_value_or_another_key_cannot_open_it() {
        let store = MemoryStore::new();
        let rules = CountingRules::default();
        let a = secrets(SECRET_A);
        a.load(&store, &site(), &rules, now()).await.unwrap();
        let key = current_key(&rules);
        let stored = store.get(&key, now()).await.unwrap().unwrap();

        let wrong = secrets(SECRET_B);
        assert!(matches!(
            wrong.open(&key, &stored),
            Err(SaltError::UnknownSecret { .. })
        ));
        // And loading with it fails rather than replacing the salt others use.
        let error = wrong
            .load(&store, &site(), &rules, now())
            .await
            .unwrap_err();
        assert!(
            matches!(error, Error::Salt(SaltError::UnknownSecret { .. })),
            "{error}"
        );
        assert_eq!(store.get(&key, now()).await.unwrap().unwrap(), stored);

        // A secret that claims the same key id but is another (forged header).
        let mut forged = stored.clone();
        forged[4..8].copy_from_slice(&wrong.keys[0].id);
        assert!(matches!(
            wrong.open(&key, &forged),
            Err(SaltError::Unseal { .. })
        ));
        for index in [0, 5, 10, 40, SEALED_LEN - 1] {
            let mut altered = stored.clone();
            altered[index] ^= 1;
            assert!(a.open(&key, &altered).is_err(), "byte {index} altered");
        }
        // Moved under another site's key.
        let other = keys::salt(&SiteId::new("other").unwrap(), "2026-11-30");
        assert!(matches!(
            a.open(&other, &stored),
            Err(SaltError::Unseal { .. })
        ));
        assert!(matches!(
            a.open(&key, &stored[..40]),
            Err(SaltError::Malformed { len: 40, .. })
        ));
    }

    #[tokio::test]
    async fn instances_with_the_same_secret_derive_the_same_ids() {
        let store = MemoryStore::new();
        let rules = CountingRules::default();
        let first = secrets(SECRET_A)
            .load(&store, &site(), &rules, now())
            .await
            .unwrap();
        let second = secrets(&format!("# the same secret, read elsewhere\n{SECRET_A}\n"))
            .load(&store, &site(), &rules, now())
            .await
            .unwrap();
        assert_eq!(
            first.identify(&rules, ip(), "UA", now()),
            second.identify(&rules, ip(), "UA", now())
        );
    }

    #[tokio::test]
    async fn a_rotated_secret_opens_old_salts_and_seals_new_ones() {
        let store = MemoryStore::new();
        let rules = CountingRules::default();
        let before = secrets(SECRET_A)
            .load(&store, &site(), &rules, now())
            .await
            .unwrap();
        // Step 2 of the runbook: the new secret first, the old one still accepted.
        let rotated = secrets(&format!("{SECRET_B},{SECRET_A}"));
        assert_eq!(rotated.key_ids().len(), 2);
        let after = rotated.load(&store, &site(), &rules, now()).await.unwrap();
        assert_eq!(
            before.identify(&rules, ip(), "UA", now()),
            after.identify(&rules, ip(), "UA", now())
        );
        rotated
            .rotate_now(&store, &site(), &rules, now())
            .await
            .unwrap();
        let stored = store
            .get(&current_key(&rules), now())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(hex::encode(&stored[4..8]), rotated.key_id());
        assert!(
            secrets(SECRET_B)
                .open(&current_key(&rules), &stored)
                .is_ok()
        );
        assert!(
            secrets(SECRET_A)
                .open(&current_key(&rules), &stored)
                .is_err()
        );
    }

    #[tokio::test]
    async fn plain_salts_of_earlier_versions_are_replaced_not_used() {
        let store = MemoryStore::new();
        let rules = CountingRules::default();
        let plain = Salt::from_bytes([7; 32]);
        for key in [current_key(&rules), previous_key(&rules)] {
            store
                .set(
                    &key,
                    plain.as_bytes(),
                    Some("2026-12-02T00:00:00Z".parse().unwrap()),
                )
                .await
                .unwrap();
        }
        let a = secrets(SECRET_A);
        let salts = a.load(&store, &site(), &rules, now()).await.unwrap();
        assert!(salts.replaced_plain_salt());
        assert_ne!(
            salts.current, plain,
            "a plain salt anyone could read was used"
        );
        assert!(salts.previous.is_none());
        let stored = store
            .get(&current_key(&rules), now())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            a.open(&current_key(&rules), &stored).unwrap(),
            salts.current
        );
        assert_eq!(store.get(&previous_key(&rules), now()).await.unwrap(), None);
        // The replacement expires like any salt (48 h after its period starts).
        let period = rules.salt_rotation().period(rules.calendar(), now());
        assert_eq!(
            store
                .get(&current_key(&rules), period.expires_at())
                .await
                .unwrap(),
            None
        );
        // A second instance agrees on the replacement.
        let again = a.load(&store, &site(), &rules, now()).await.unwrap();
        assert!(!again.replaced_plain_salt());
        assert_eq!(again.current, salts.current);
    }

    #[test]
    fn secrets_text_is_parsed_and_checked() {
        let parsed = secrets(&format!(
            "# current\n  {SECRET_B}  \n\n# previous\n{SECRET_A}\n"
        ));
        assert_eq!(parsed.key_ids().len(), 2);
        assert_eq!(parsed.key_id(), secrets(SECRET_B).key_id());
        assert_eq!(parsed.key_ids()[1], secrets(SECRET_A).key_id());
        assert_eq!(
            SaltSecrets::parse(" \n# none\n").unwrap_err(),
            SecretError::Empty
        );
        assert!(matches!(
            SaltSecrets::parse("short"),
            Err(SecretError::TooShort {
                position: 1,
                len: 5,
                ..
            })
        ));
        assert!(matches!(
            SaltSecrets::parse(&format!("{SECRET_A},{SECRET_B},{SECRET_A}")),
            Err(SecretError::Repeated { position: 3 })
        ));
        let (generated, text) = SaltSecrets::generate().unwrap();
        assert_eq!(text.len(), 64);
        assert_eq!(secrets(&text).key_id(), generated.key_id());
        assert_ne!(SaltSecrets::generate().unwrap().1, text);
    }

    #[test]
    fn debug_shows_key_ids_only() {
        let shown = format!("{:?}", secrets(SECRET_A));
        assert!(shown.contains(&secrets(SECRET_A).key_id()), "{shown}");
        assert!(!shown.contains(&SECRET_A[..8]), "{shown}");
    }
}
