//! The signed JSON credential of a trust record.
//!
//! # Format
//!
//! ```json
//! {"key_id": "<16 hex>", "payload": "<base64url>", "signature": "<base64url>"}
//! ```
//!
//! `payload` is base64url (RFC 4648 §5, no padding) of the UTF-8 bytes of a compact JSON
//! object, [`CredentialPayload`], whose first member `"type"` is
//! `"footfall-trust-credential/1"`. `signature` is the 64-byte Ed25519 signature
//! (RFC 8032, no pre-hash, no context) of exactly those payload bytes by the key
//! `key_id` names. The signed bytes travel as they were signed, so no canonical JSON is
//! needed to verify: decode, verify the bytes, then parse them. A verifier also checks
//! that the payload's own `key_id` equals the envelope's, so the unsigned envelope
//! cannot point a signature at another key. Base64 decoding is strict (no padding, no
//! stray bits), so every credential has exactly one spelling.
//!
//! `status` is the live status at `issued_at`; `issued_at` is the signing instant rounded
//! down to the minute, so the credential (and its fingerprint, SHA-256 of the payload
//! bytes) is stable for a minute and Ed25519's determinism gives the same signature.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer};
use jiff::{Timestamp, TimestampRound, Unit};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::keyring::{KeyError, Keyring, KeysDocument};
use super::record::{LiveStatus, TrustRecord};

/// The value of the payload's `type` member.
pub const CREDENTIAL_TYPE: &str = "footfall-trust-credential/1";

/// The envelope served at `/trust/{site}.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    /// The id of the signing key, in the keys document.
    pub key_id: String,
    /// base64url of the signed payload bytes.
    pub payload: String,
    /// base64url of the Ed25519 signature of the payload bytes.
    pub signature: String,
}

/// What a credential states. Member order is the serialisation order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialPayload {
    /// Always [`CREDENTIAL_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// The site id.
    pub site: String,
    /// The site's name (may be empty).
    pub site_name: String,
    /// The issuer.
    pub issuer: String,
    /// The certificate id.
    pub certificate_id: String,
    /// The certified hostnames.
    pub hostnames: Vec<String>,
    /// The level.
    pub level: String,
    /// Start of validity.
    pub issued: Timestamp,
    /// End of validity (exclusive).
    pub expires: Timestamp,
    /// The live status at `issued_at` (`valid`, `not_yet_valid`, `expired`,
    /// `suspended`, `revoked`).
    pub status: String,
    /// When the credential was signed (rounded down to the minute).
    pub issued_at: Timestamp,
    /// The signing key's id, repeated inside the signed bytes.
    pub key_id: String,
}

/// Why a credential does not verify.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The document is not a credential at all.
    #[error("not a footfall trust credential: {0}")]
    Malformed(String),
    /// The key is unknown or unusable.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The signature does not match the payload and key.
    #[error(
        "the signature does not verify with key {0}: the credential was altered or signed by another key"
    )]
    BadSignature(String),
    /// Signed, but the payload contradicts the envelope or the format.
    #[error("signed payload rejected: {0}")]
    BadPayload(String),
}

/// A credential whose signature checked out.
#[derive(Clone, Debug)]
pub struct VerifiedCredential {
    /// The statement.
    pub payload: CredentialPayload,
    /// SHA-256 of the payload bytes, lowercase hex.
    pub fingerprint: String,
}

/// Rounds `now` down to the minute: the instant a credential is issued at.
pub fn credential_instant(now: Timestamp) -> Timestamp {
    now.round(
        TimestampRound::new()
            .smallest(Unit::Minute)
            .mode(jiff::RoundMode::Trunc),
    )
    .unwrap_or(now)
}

impl CredentialPayload {
    /// The statement about `record` of site `site` (`site_name`) at `issued_at`.
    pub fn new(
        site: &str,
        site_name: &str,
        record: &TrustRecord,
        issued_at: Timestamp,
        key_id: &str,
    ) -> CredentialPayload {
        CredentialPayload {
            kind: CREDENTIAL_TYPE.to_owned(),
            site: site.to_owned(),
            site_name: site_name.to_owned(),
            issuer: record.issuer.clone(),
            certificate_id: record.certificate_id.clone(),
            hostnames: record.hostnames.clone(),
            level: record.level.clone(),
            issued: record.issued,
            expires: record.expires,
            status: record.status_at(issued_at).name().to_owned(),
            issued_at,
            key_id: key_id.to_owned(),
        }
    }

    /// The live status at `now` as far as the credential can tell: a suspension or
    /// revocation it states stands; otherwise the dates decide. (A revocation after
    /// `issued_at` is not in it: fetch a fresh credential for that.)
    pub fn status_at(&self, now: Timestamp) -> Option<LiveStatus> {
        Some(match LiveStatus::from_name(&self.status)? {
            status @ (LiveStatus::Suspended | LiveStatus::Revoked) => status,
            _ if now < self.issued => LiveStatus::NotYetValid,
            _ if now >= self.expires => LiveStatus::Expired,
            _ => LiveStatus::Valid,
        })
    }
}

/// Signs `payload` with `keyring`'s key.
pub fn sign(payload: &CredentialPayload, keyring: &Keyring) -> Credential {
    let bytes = serde_json::to_vec(payload).expect("a payload serializes");
    let signature = keyring.signing_key().sign(&bytes);
    Credential {
        key_id: keyring.key_id().to_owned(),
        payload: URL_SAFE_NO_PAD.encode(&bytes),
        signature: URL_SAFE_NO_PAD.encode(signature.to_bytes()),
    }
}

/// SHA-256 of the payload bytes, lowercase hex; `None` when `payload` is not base64url.
pub fn fingerprint(credential: &Credential) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(&credential.payload).ok()?;
    Some(hex::encode(Sha256::digest(bytes)))
}

/// Verifies `credential` against the published `keys`.
pub fn verify(
    credential: &Credential,
    keys: &KeysDocument,
) -> Result<VerifiedCredential, CredentialError> {
    let key = keys.public_key(&credential.key_id)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(&credential.payload)
        .map_err(|e| CredentialError::Malformed(format!("payload is not base64url: {e}")))?;
    let signature: [u8; 64] = URL_SAFE_NO_PAD
        .decode(&credential.signature)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| {
            CredentialError::Malformed("signature is not 64 bytes of base64url".to_owned())
        })?;
    // Strict verification also refuses small-order keys and non-canonical signatures, so
    // a signature cannot be reshaped into a second valid one.
    key.verify_strict(&bytes, &Signature::from_bytes(&signature))
        .map_err(|_| CredentialError::BadSignature(credential.key_id.clone()))?;
    let payload: CredentialPayload =
        serde_json::from_slice(&bytes).map_err(|e| CredentialError::BadPayload(e.to_string()))?;
    if payload.kind != CREDENTIAL_TYPE {
        return Err(CredentialError::BadPayload(format!(
            "type {:?} is not {CREDENTIAL_TYPE}",
            payload.kind
        )));
    }
    if payload.key_id != credential.key_id {
        return Err(CredentialError::BadPayload(format!(
            "signed for key {} but the envelope names {}",
            payload.key_id, credential.key_id
        )));
    }
    if LiveStatus::from_name(&payload.status).is_none() {
        return Err(CredentialError::BadPayload(format!(
            "unknown status {:?}",
            payload.status
        )));
    }
    Ok(VerifiedCredential {
        payload,
        fingerprint: hex::encode(Sha256::digest(&bytes)),
    })
}
