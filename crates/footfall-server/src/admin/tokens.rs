//! The admin tokens: kept only as digests, compared in constant time, named in the audit
//! log by a fingerprint that reveals neither the token nor its digest.

use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::audit::TokenFingerprint;

/// The accepted admin tokens, kept only as SHA-256 digests. Several may be valid at once
/// so a token can be rotated without downtime.
#[derive(Clone)]
pub struct AdminTokens {
    digests: Vec<[u8; 32]>,
    fingerprints: Vec<TokenFingerprint>,
}

impl std::fmt::Debug for AdminTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print tokens or their digests.
        write!(f, "AdminTokens({} configured)", self.digests.len())
    }
}

impl AdminTokens {
    /// Tokens from configuration (empty entries ignored).
    pub fn new(tokens: &[String]) -> Self {
        let digests: Vec<[u8; 32]> = tokens
            .iter()
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
            .map(|t| Sha256::digest(t.as_bytes()).into())
            .collect();
        let fingerprints = digests.iter().map(fingerprint_of_digest).collect();
        AdminTokens {
            digests,
            fingerprints,
        }
    }

    /// True when no token is configured (the admin API then refuses everything).
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Checks a presented token. The presented token is hashed first, so the comparison
    /// time depends on neither the token's length nor how much of it matches; every
    /// configured digest is compared, so neither does it reveal which one matched.
    pub fn accepts(&self, presented: &str) -> bool {
        self.identify(presented).is_some()
    }

    /// Checks a presented token like [`accepts`](Self::accepts) and returns the
    /// fingerprint of the configured token it matched, picked without a data-dependent
    /// branch.
    pub fn identify(&self, presented: &str) -> Option<TokenFingerprint> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut matched = subtle::Choice::from(0);
        let mut fingerprint = [0u8; 4];
        for (candidate, candidate_fingerprint) in self.digests.iter().zip(&self.fingerprints) {
            let this = candidate.ct_eq(&digest);
            for (byte, candidate_byte) in fingerprint.iter_mut().zip(candidate_fingerprint.0) {
                byte.conditional_assign(&candidate_byte, this);
            }
            matched |= this;
        }
        bool::from(matched).then_some(TokenFingerprint(fingerprint))
    }
}

/// The fingerprint of a token, from its digest: it names a token in the audit log
/// without revealing it (the token's digest is hashed again, so not even the digest
/// compared at login can be recovered).
pub fn fingerprint_of_digest(digest: &[u8; 32]) -> TokenFingerprint {
    let again = Sha256::digest(digest);
    TokenFingerprint([again[0], again[1], again[2], again[3]])
}
