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
//! `"footfall-trust-credential/2"`. `signature` is the 64-byte Ed25519 signature
//! (RFC 8032, no pre-hash, no context) of exactly those payload bytes by the key
//! `key_id` names. The signed bytes travel as they were signed, so no canonical JSON is
//! needed to verify: decode, verify the bytes, then parse them. A verifier also checks
//! that the payload's own `key_id` equals the envelope's, so the unsigned envelope
//! cannot point a signature at another key. Base64 decoding is strict (no padding, no
//! stray bits), so every credential has exactly one spelling.
//!
//! The payload is a pure function of the site, its trust record and the signing key: it
//! carries no signing time and no status derived from a clock. Issued twice, or by two
//! instances, or after a restart, a credential is the same bytes (Ed25519 signatures are
//! deterministic), so its fingerprint (SHA-256 of the payload bytes) changes exactly when
//! what it states changes: the record, the site's name, or the key. `status` is the
//! status the issuer set (`valid`, `suspended`, `revoked`); expiry and "not yet valid"
//! follow from the dates at the verifier's own clock ([`CredentialPayload::status_at`]).
//! A suspension or revocation changes the payload, so a verifier sees it by fetching the
//! credential again, as with any certificate and its revocation check.
//!
//! Version 1 (`footfall-trust-credential/1`) also carried the signing minute, so the same
//! record gave a new credential and fingerprint every minute; it is refused with a
//! message saying to fetch a fresh credential.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::keyring::{KeyError, Keyring, KeysDocument};
use super::record::{LiveStatus, SetStatus, TrustRecord, live_status};

/// The value of the payload's `type` member.
pub const CREDENTIAL_TYPE: &str = "footfall-trust-credential/2";

/// The type of the first format, which a verifier names when it refuses one.
const CREDENTIAL_TYPE_1: &str = "footfall-trust-credential/1";

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
    /// The status the issuer set: `valid`, `suspended` or `revoked`.
    pub status: String,
    /// The signing key's id, repeated inside the signed bytes.
    pub key_id: String,
}

/// The `type` member of a payload, read before the rest so that an earlier format is
/// named rather than reported as an unknown field.
#[derive(Deserialize)]
struct TypeOnly {
    #[serde(rename = "type")]
    kind: String,
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

impl CredentialPayload {
    /// The statement about `record` of site `site` (`site_name`), to be signed by the
    /// key `key_id`.
    pub fn new(
        site: &str,
        site_name: &str,
        record: &TrustRecord,
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
            status: record.status.name().to_owned(),
            key_id: key_id.to_owned(),
        }
    }

    /// The live status at `now` as far as the credential can tell: a suspension or
    /// revocation it states stands; otherwise the dates decide. (A suspension or
    /// revocation after it was fetched is not in it: fetch it again for that.) `None`
    /// when `status` is not one of the set statuses.
    pub fn status_at(&self, now: Timestamp) -> Option<LiveStatus> {
        let status = SetStatus::from_name(&self.status)?;
        Some(live_status(status, self.issued, self.expires, now))
    }
}

/// The credential of `record` for site `site` (`site_name`), signed with `keyring`'s
/// key: the same bytes every time for the same inputs.
pub fn issue(site: &str, site_name: &str, record: &TrustRecord, keyring: &Keyring) -> Credential {
    sign(
        &CredentialPayload::new(site, site_name, record, keyring.key_id()),
        keyring,
    )
}

/// The credential as served at `/trust/{site}.json` and shown on the verification page:
/// indented JSON and a final newline.
pub fn to_document(credential: &Credential) -> String {
    let mut text = serde_json::to_string_pretty(credential).expect("a credential serializes");
    text.push('\n');
    text
}

/// The payload of `credential`, decoded and indented for reading (members in the signed
/// order); `None` when it is not base64url of a payload.
pub fn payload_document(credential: &Credential) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(&credential.payload).ok()?;
    let payload: CredentialPayload = serde_json::from_slice(&bytes).ok()?;
    serde_json::to_string_pretty(&payload).ok()
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
    let kind = serde_json::from_slice::<TypeOnly>(&bytes)
        .map_err(|e| CredentialError::BadPayload(e.to_string()))?
        .kind;
    if kind == CREDENTIAL_TYPE_1 {
        return Err(CredentialError::BadPayload(format!(
            "{CREDENTIAL_TYPE_1} is an earlier format (it changed every minute): fetch the \
             credential again to get a {CREDENTIAL_TYPE} one"
        )));
    }
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
    if SetStatus::from_name(&payload.status).is_none() {
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
