//! Settings of a store beyond its location: [`StoreOptions`], given to
//! [`AnyStore::connect_with`](super::AnyStore::connect_with).

use std::path::PathBuf;

use super::StoreError;

/// How to open a store, beyond its URL or path. `StoreOptions::default()` is what
/// [`AnyStore::connect`](super::AnyStore::connect) uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreOptions {
    /// Certificates for Redis over TLS (`rediss://`, `rediss+cluster://`). Giving any with
    /// another kind of store is a [`StoreError::Config`], since they would be ignored.
    pub redis_tls: RedisTls,
}

/// Certificates for Redis over TLS, PEM files read when the store connects.
///
/// With none given, the server's certificate is checked against the operating system's
/// trust store (the `SSL_CERT_FILE` / `SSL_CERT_DIR` variables, else the system bundle, as
/// OpenSSL finds it) and no client certificate is sent. A CA file replaces the system
/// roots rather than adding to them, so a private CA is the only one trusted.
///
/// The server's certificate must name the host of the URL (a DNS name, or an IP address
/// for `rediss://127.0.0.1`); TLS verification is never turned off.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedisTls {
    /// The CA certificate(s) to trust instead of the system roots (one or more PEM
    /// certificates).
    pub ca_cert: Option<PathBuf>,
    /// A client certificate, for servers that require one (`tls-auth-clients yes`):
    /// the certificate, optionally followed by its intermediates. Needs `client_key`.
    pub client_cert: Option<PathBuf>,
    /// The private key of `client_cert` (PKCS#8, PKCS#1 or SEC1 PEM).
    pub client_key: Option<PathBuf>,
}

impl RedisTls {
    /// True when no file is given: system roots, no client certificate.
    pub fn is_empty(&self) -> bool {
        self.ca_cert.is_none() && self.client_cert.is_none() && self.client_key.is_none()
    }

    /// The error for TLS settings given with a store that does not use TLS; `location` as
    /// it may be printed (a Redis URL's password redacted).
    pub(super) fn unused(location: &str) -> StoreError {
        StoreError::Config(format!(
            "Redis TLS certificates are given, but {location:?} does not connect over TLS; \
             use rediss:// or rediss+cluster://, or drop the TLS settings"
        ))
    }
}
