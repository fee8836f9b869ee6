//! Trust badges: a site's certification record, its live status, the signed credential
//! that proves it, and the badge, verification page and keys that show it.
//!
//! A record is configured per site (the `trust` table of [`SiteSettings`]) and validated
//! into a [`TrustRecord`] ([`record`]). Its status at an instant is derived by
//! [`TrustRecord::status_at`]: time comes in as an argument, so every answer is a pure
//! function of the record and the clock. Renderers ([`render`]) turn records into SVG and
//! HTML strings with every configured text escaped; [`credential`] signs and verifies the
//! JSON credential with the issuer's Ed25519 key ([`keyring`]); [`routes`] serves all of
//! it.
//!
//! Layers, bottom up: `record` and `keyring`; `credential` and `render` above them;
//! `routes` on top, the only part that knows HTTP and the service's state. Modules below
//! `routes` import each other by their own paths, never through this module, and this
//! module re-exports nothing of `routes`, so importing the trust types never reaches up
//! into the service.
//!
//! [`SiteSettings`]: crate::sites::SiteSettings

pub mod credential;
pub mod keyring;
pub mod record;
pub mod render;
pub mod routes;

pub use credential::{Credential, CredentialError, CredentialPayload, VerifiedCredential};
pub use keyring::{KeyError, Keyring, KeysDocument};
pub use record::{LiveStatus, SetStatus, TinnhiemmangSettings, TrustRecord, TrustSettings};
pub use render::tinnhiemmang_snippet;

#[cfg(test)]
mod tests;
