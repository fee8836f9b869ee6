//! Issuer keys: the Ed25519 signing key the service signs credentials with, its key
//! file, and the public keys document published at `/.well-known/footfall-trust-keys`.
//!
//! A key id is the first 16 hex digits of SHA-256 of the 32-byte public key, so an id
//! names exactly one key and nobody can give a second key the same id by configuration.
//!
//! Rotation: the service signs with one key, and publishes it together with the public
//! keys it signed with before (retired keys, from a saved keys document), so credentials
//! that verifiers fetched under an old key keep verifying. Only public halves of retired
//! keys are ever needed.

use std::fmt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The only algorithm, named as in JOSE (RFC 8037).
pub const ALGORITHM: &str = "Ed25519";

/// Why a key, key file or keys document is not usable.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file or document is not what it should be.
    #[error("{0}")]
    Invalid(String),
    /// A credential names a key the document does not have.
    #[error("unknown key id {0:?}: the keys document does not list it")]
    UnknownKey(String),
    /// No randomness for a new key.
    #[error("the operating system gave no random bytes: {0}")]
    Random(String),
}

/// A private key file, as `footfall trust keygen` writes it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    algorithm: String,
    key_id: String,
    /// The 32-byte Ed25519 seed, base64url without padding.
    private_key: String,
}

/// The service's signing key and the retired public keys it still publishes. `Debug`
/// shows key ids only, never the secret.
#[derive(Clone)]
pub struct Keyring {
    key_id: String,
    signing: SigningKey,
    /// Checked entries of retired keys, without the signing key's own.
    retired: Vec<PublicKeyEntry>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let retired: Vec<&str> = self.retired.iter().map(|e| e.key_id.as_str()).collect();
        f.debug_struct("Keyring")
            .field("key_id", &self.key_id)
            .field("retired", &retired)
            .finish_non_exhaustive()
    }
}

/// The public keys document: every key a credential may be signed with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysDocument {
    /// The keys.
    pub keys: Vec<PublicKeyEntry>,
}

/// One published key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeyEntry {
    /// The key id (see the module docs).
    pub key_id: String,
    /// Always `Ed25519`.
    pub algorithm: String,
    /// The 32-byte public key, base64url without padding.
    pub public_key: String,
}

/// The key id of a public key.
pub fn key_id_of(key: &VerifyingKey) -> String {
    let digest = Sha256::digest(key.as_bytes());
    hex::encode(&digest[..8])
}

impl Keyring {
    /// A keyring of one signing key.
    pub fn from_signing_key(signing: SigningKey) -> Keyring {
        Keyring {
            key_id: key_id_of(&signing.verifying_key()),
            signing,
            retired: Vec::new(),
        }
    }

    /// Also publishes every key of `retired` (a keys document saved before a rotation),
    /// each checked like a verifier checks it. The signing key's own entry, and keys
    /// already published, are skipped, so passing a document that lists the current
    /// key, or the same document twice, is harmless.
    pub fn with_retired(mut self, retired: &KeysDocument) -> Result<Keyring, KeyError> {
        for entry in &retired.keys {
            retired.public_key(&entry.key_id)?;
            let known = entry.key_id == self.key_id
                || self.retired.iter().any(|k| k.key_id == entry.key_id);
            if !known {
                self.retired.push(entry.clone());
            }
        }
        Ok(self)
    }

    /// Reads a keys document file for [`Keyring::with_retired`].
    pub fn with_retired_file(self, path: &Path) -> Result<Keyring, KeyError> {
        let text = read_text(path)?;
        let document = KeysDocument::from_json(&text)
            .map_err(|e| KeyError::Invalid(format!("{}: {e}", path.display())))?;
        self.with_retired(&document)
            .map_err(|e| KeyError::Invalid(format!("{}: {e}", path.display())))
    }

    /// A new random key from the operating system's generator.
    pub fn generate() -> Result<Keyring, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(Keyring::from_signing_key(SigningKey::from_bytes(&seed)))
    }

    /// Reads a key file written by [`Keyring::to_key_file`] (`footfall trust keygen`).
    pub fn load(path: &Path) -> Result<Keyring, KeyError> {
        let text = read_text(path)?;
        Keyring::from_key_file(&text)
            .map_err(|e| KeyError::Invalid(format!("{}: {e}", path.display())))
    }

    /// Parses the text of a key file.
    pub fn from_key_file(text: &str) -> Result<Keyring, KeyError> {
        let file: KeyFile = serde_json::from_str(text)
            .map_err(|e| KeyError::Invalid(format!("not a footfall key file: {e}")))?;
        if file.algorithm != ALGORITHM {
            return Err(KeyError::Invalid(format!(
                "algorithm {:?} is not supported (only {ALGORITHM})",
                file.algorithm
            )));
        }
        let seed: [u8; 32] = URL_SAFE_NO_PAD
            .decode(&file.private_key)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| {
                KeyError::Invalid("private_key is not 32 bytes of base64url".to_owned())
            })?;
        let keyring = Keyring::from_signing_key(SigningKey::from_bytes(&seed));
        if keyring.key_id != file.key_id {
            return Err(KeyError::Invalid(format!(
                "key_id {:?} does not match the key (its id is {})",
                file.key_id, keyring.key_id
            )));
        }
        Ok(keyring)
    }

    /// The text of a key file holding this key. It contains the secret key.
    pub fn to_key_file(&self) -> String {
        let file = KeyFile {
            algorithm: ALGORITHM.to_owned(),
            key_id: self.key_id.clone(),
            private_key: URL_SAFE_NO_PAD.encode(self.signing.to_bytes()),
        };
        let mut text = serde_json::to_string_pretty(&file).expect("a key file serializes");
        text.push('\n');
        text
    }

    /// The id of the signing key.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// The public key, base64url.
    pub fn public_key_base64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.signing.verifying_key().as_bytes())
    }

    /// The document to publish: the signing key first, then the retired keys.
    pub fn keys_document(&self) -> KeysDocument {
        let current = PublicKeyEntry {
            key_id: self.key_id.clone(),
            algorithm: ALGORITHM.to_owned(),
            public_key: self.public_key_base64(),
        };
        KeysDocument {
            keys: std::iter::once(current)
                .chain(self.retired.iter().cloned())
                .collect(),
        }
    }
}

fn read_text(path: &Path) -> Result<String, KeyError> {
    std::fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.display().to_string(),
        source,
    })
}

impl KeysDocument {
    /// Parses a saved document.
    pub fn from_json(text: &str) -> Result<KeysDocument, KeyError> {
        serde_json::from_str(text)
            .map_err(|e| KeyError::Invalid(format!("not a footfall trust keys document: {e}")))
    }

    /// The public key with `key_id`, checked: Ed25519, 32 bytes, a valid curve point,
    /// and an id that is really its own (a document cannot relabel a key).
    pub fn public_key(&self, key_id: &str) -> Result<VerifyingKey, KeyError> {
        let entry = self
            .keys
            .iter()
            .find(|entry| entry.key_id == key_id)
            .ok_or_else(|| KeyError::UnknownKey(key_id.to_owned()))?;
        if entry.algorithm != ALGORITHM {
            return Err(KeyError::Invalid(format!(
                "key {key_id}: algorithm {:?} is not supported",
                entry.algorithm
            )));
        }
        let bytes: [u8; 32] = URL_SAFE_NO_PAD
            .decode(&entry.public_key)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| KeyError::Invalid(format!("key {key_id}: not 32 bytes of base64url")))?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| KeyError::Invalid(format!("key {key_id}: not an Ed25519 public key")))?;
        if key_id_of(&key) != key_id {
            return Err(KeyError::Invalid(format!(
                "key {key_id}: the id does not belong to this public key"
            )));
        }
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed() -> Keyring {
        Keyring::from_signing_key(SigningKey::from_bytes(&[7u8; 32]))
    }

    #[test]
    fn key_file_round_trips_and_checks_the_id() {
        let keyring = fixed();
        let text = keyring.to_key_file();
        let loaded = Keyring::from_key_file(&text).unwrap();
        assert_eq!(loaded.key_id(), keyring.key_id());
        assert_eq!(loaded.public_key_base64(), keyring.public_key_base64());
        let other = Keyring::from_signing_key(SigningKey::from_bytes(&[8u8; 32]));
        let relabelled = text.replace(keyring.key_id(), other.key_id());
        assert!(
            Keyring::from_key_file(&relabelled)
                .unwrap_err()
                .to_string()
                .contains("does not match")
        );
        assert!(Keyring::from_key_file("{}").is_err());
        assert!(Keyring::from_key_file(&text.replace("Ed25519", "RS256")).is_err());
    }

    #[test]
    fn key_id_is_independent_sha256_prefix() {
        // RFC 8032 test vector 1: this seed's public key is d75a9801…511a.
        let seed: [u8; 32] =
            hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap()
                .try_into()
                .unwrap();
        let keyring = Keyring::from_signing_key(SigningKey::from_bytes(&seed));
        let public =
            hex::decode("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
                .unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.decode(keyring.public_key_base64()).unwrap(),
            public
        );
        assert_eq!(keyring.key_id(), hex::encode(&Sha256::digest(&public)[..8]));
    }

    #[test]
    fn keys_document_round_trips_and_rejects_relabelled_keys() {
        let keyring = fixed();
        let document = keyring.keys_document();
        let text = serde_json::to_string(&document).unwrap();
        let parsed = KeysDocument::from_json(&text).unwrap();
        assert_eq!(parsed, document);
        assert_eq!(
            parsed.public_key(keyring.key_id()).unwrap(),
            keyring.signing_key().verifying_key()
        );
        assert!(matches!(
            parsed.public_key("0000000000000000"),
            Err(KeyError::UnknownKey(_))
        ));
        let mut relabelled = parsed.clone();
        relabelled.keys[0].key_id = "0000000000000000".to_owned();
        assert!(matches!(
            relabelled.public_key("0000000000000000"),
            Err(KeyError::Invalid(_))
        ));
        let mut short = parsed;
        short.keys[0].public_key.pop();
        assert!(short.public_key(keyring.key_id()).is_err());
    }

    #[test]
    fn retired_keys_are_published_after_the_signing_key_and_checked() {
        let old = Keyring::generate().unwrap();
        let older = Keyring::generate().unwrap();
        let saved = KeysDocument {
            keys: [old.keys_document().keys, older.keys_document().keys].concat(),
        };
        let current = fixed().with_retired(&saved).unwrap();
        let ids: Vec<String> = current
            .keys_document()
            .keys
            .into_iter()
            .map(|entry| entry.key_id)
            .collect();
        assert_eq!(ids, [fixed().key_id(), old.key_id(), older.key_id()]);
        // Again, and with the current key in the document: nothing listed twice.
        let again = current
            .clone()
            .with_retired(&current.keys_document())
            .unwrap();
        assert_eq!(again.keys_document(), current.keys_document());
        // A relabelled entry is refused, as a verifier would refuse it.
        let mut relabelled = old.keys_document();
        relabelled.keys[0].key_id = "0000000000000000".to_owned();
        assert!(matches!(
            fixed().with_retired(&relabelled),
            Err(KeyError::Invalid(_))
        ));
        assert!(format!("{current:?}").contains(old.key_id()));
    }
}
