//! The admin API, on the internal listener, behind bearer tokens.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::AppError;
use crate::state::AppState;

/// The accepted admin tokens, kept only as SHA-256 digests. Several may be valid at once
/// so a token can be rotated without downtime.
#[derive(Clone)]
pub struct AdminTokens {
    digests: Vec<[u8; 32]>,
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
        AdminTokens {
            digests: tokens
                .iter()
                .map(|t| t.trim())
                .filter(|t| !t.is_empty())
                .map(|t| Sha256::digest(t.as_bytes()).into())
                .collect(),
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
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut matched = subtle::Choice::from(0);
        for candidate in &self.digests {
            matched |= candidate.ct_eq(&digest);
        }
        bool::from(matched)
    }
}

/// The admin routes (mounted under `/admin/v1`).
pub fn routes() -> axum::Router<AppState> {
    axum::Router::new().route("/sites", axum::routing::get(list_sites))
}

/// `GET /admin/v1/sites`: every site's settings.
async fn list_sites(State(state): State<AppState>) -> axum::Json<Vec<crate::sites::SiteSettings>> {
    axum::Json(
        state
            .sites
            .all()
            .iter()
            .map(|site| site.settings.clone())
            .collect(),
    )
}

/// Middleware: requires `Authorization: Bearer <token>` with a configured token.
pub async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, AppError> {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match presented {
        Some(token) if !token.is_empty() && state.admin.accepts(token) => {
            Ok(next.run(request).await)
        }
        _ => Err(AppError::Unauthorized),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_exactly() {
        let tokens = AdminTokens::new(&["old-token".into(), " new-token ".into(), "".into()]);
        assert!(tokens.accepts("old-token"));
        assert!(tokens.accepts("new-token"));
        for wrong in [
            "",
            "old-toke",
            "old-token ",
            "OLD-TOKEN",
            "new-token\0",
            "x",
        ] {
            assert!(!tokens.accepts(wrong), "{wrong:?}");
        }
        assert!(AdminTokens::new(&[]).is_empty());
        assert!(!format!("{tokens:?}").contains("token\""));
    }
}
