//! The statistics page's sign-in session: a cookie that proves a token was presented,
//! without holding the token. Its value is `expiry.fingerprint.mac`, the MAC a keyed
//! BLAKE3 of the expiry and the token's digest under a key made at random for this
//! process. A session therefore ends at its expiry, when its token is removed from the
//! configuration (nothing else can make its MAC), and when the process restarts.

use std::sync::OnceLock;

use footfall::clock::Clock;
use subtle::ConstantTimeEq;

use crate::admin::tokens::{AdminTokens, Caller};
use crate::audit::TokenFingerprint;

/// The cookie's name.
pub const COOKIE: &str = "footfall_stats";
/// How long a session lasts: a working day, so a webmaster signs in once a day at most
/// and a forgotten browser does not stay signed in for long.
pub const LIFETIME_SECS: i64 = 12 * 60 * 60;

fn key() -> &'static [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the system's random source works");
        key
    })
}

fn mac(expiry: i64, digest: &[u8; 32]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_keyed(key());
    hasher.update(b"footfall stats session v1\0");
    hasher.update(&expiry.to_be_bytes());
    hasher.update(digest);
    hasher.finalize().into()
}

/// The cookie value of a session for the token with `digest` and `fingerprint`, from
/// `now` (Unix seconds).
pub fn issue(digest: &[u8; 32], fingerprint: TokenFingerprint, now: i64) -> String {
    let expiry = now + LIFETIME_SECS;
    format!(
        "{expiry}.{fingerprint}.{}",
        hex::encode(mac(expiry, digest))
    )
}

/// The caller of a session cookie value, if it is well formed, unexpired at `now` and
/// made for a token still configured.
pub fn verify(value: &str, now: i64, tokens: &AdminTokens) -> Option<Caller> {
    let mut parts = value.split('.');
    let (Some(expiry), Some(fingerprint), Some(given), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let expiry: i64 = expiry.parse().ok()?;
    if expiry <= now || expiry > now + LIFETIME_SECS {
        return None;
    }
    let mut fp = [0u8; 4];
    hex::decode_to_slice(fingerprint, &mut fp).ok()?;
    let mut given_mac = [0u8; 32];
    hex::decode_to_slice(given, &mut given_mac).ok()?;
    tokens.find(TokenFingerprint(fp), |digest| {
        bool::from(mac(expiry, digest).ct_eq(&given_mac))
    })
}

/// The session cookie of a request's `Cookie` headers, if any.
pub fn cookie_value(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
}

/// The `Set-Cookie` value of a session: HttpOnly (no script reads it), SameSite=Strict
/// (no other site's page sends it), scoped to `/stats`, and Secure when the page was
/// reached over TLS.
pub fn set_cookie(value: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{COOKIE}={value}; Path=/stats; Max-Age={LIFETIME_SECS}; HttpOnly; SameSite=Strict{secure}"
    )
}

/// The `Set-Cookie` value that ends a session.
pub fn clear_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}=; Path=/stats; Max-Age=0; HttpOnly; SameSite=Strict{secure}")
}

/// Unix seconds from `clock`.
pub fn unix_now(clock: &dyn Clock) -> i64 {
    clock.now().as_second()
}

#[cfg(test)]
mod tests {
    use footfall::SiteId;

    use super::*;
    use crate::admin::tokens::{Scope, TokenGrant, digest_of};

    #[test]
    fn a_session_proves_its_token_until_it_ends() {
        let token = "caukee-token-for-sessions";
        let grant = TokenGrant::new(token, Scope::Sites(vec![SiteId::new("caukee").unwrap()]));
        let tokens = AdminTokens::with_grants(vec![grant.clone()]);
        let now = 1_800_000_000;
        let value = issue(&digest_of(token), grant.fingerprint(), now);
        assert!(!value.contains(token) && !value.contains(&hex::encode(digest_of(token))));
        let caller = verify(&value, now + 60, &tokens).expect("a valid session");
        assert!(caller.scope.covers("caukee"));
        // Expired, tampered, or its token removed: no session.
        assert!(verify(&value, now + LIFETIME_SECS, &tokens).is_none());
        let later = value.replacen(
            &(now + LIFETIME_SECS).to_string(),
            &(now + LIFETIME_SECS + 60).to_string(),
            1,
        );
        assert!(verify(&later, now + 60, &tokens).is_none());
        let mut forged = value.clone();
        forged.pop();
        forged.push(if value.ends_with('0') { '1' } else { '0' });
        assert!(verify(&forged, now + 60, &tokens).is_none());
        for junk in ["", "1.2", "a.b.c", "1.2.3.4"] {
            assert!(verify(junk, now, &tokens).is_none(), "{junk}");
        }
        tokens.replace(vec![TokenGrant::operator("another-operator-token")]);
        assert!(verify(&value, now + 60, &tokens).is_none());
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_scoped_to_the_page() {
        let set = set_cookie("v", false);
        assert_eq!(
            set,
            "footfall_stats=v; Path=/stats; Max-Age=43200; HttpOnly; SameSite=Strict"
        );
        assert!(set_cookie("v", true).ends_with("; Secure"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
        let mut headers = http::HeaderMap::new();
        headers.append(
            http::header::COOKIE,
            "a=1; footfall_stats=xyz".parse().unwrap(),
        );
        assert_eq!(cookie_value(&headers), Some("xyz"));
    }
}
