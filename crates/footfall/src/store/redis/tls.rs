//! TLS to Redis: the rustls crypto provider, the certificate files, and TLS failures told
//! apart from other connection failures.
//!
//! redis-rs builds a rustls client configuration at every connect, from the process-wide
//! default crypto provider; footfall makes that ring unless the application installed one
//! first. The certificate files are read and checked here, once, so that a bad file is
//! named at start-up rather than reported by redis-rs without its name.

use std::path::Path;

use redis::{ClientTlsConfig, RedisError, TlsCertificates};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use crate::store::{RedisTls, StoreError};

/// Makes ring the process-wide rustls provider, unless one is installed already (the
/// application's choice wins). Without a default, rustls picks one from its enabled crate
/// features and panics when it finds two, as a workspace that also enables aws-lc-rs would.
pub(super) fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another thread's install is fine: a provider is installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// The certificates for redis-rs, read from the files in `tls` and checked by building
/// the rustls configuration they make; `None` when no file is given (system roots, no
/// client certificate: what redis-rs does for `rediss://` by itself).
pub(super) fn certificates(tls: &RedisTls) -> Result<Option<TlsCertificates>, StoreError> {
    if tls.is_empty() {
        return Ok(None);
    }
    let mut roots = RootCertStore::empty();
    let root_cert = match &tls.ca_cert {
        Some(path) => {
            let pem = read(path, "CA certificate")?;
            for cert in parse_certificates(&pem, path, "CA certificate")? {
                roots
                    .add(cert)
                    .map_err(|error| bad_file(path, "CA certificate", &error))?;
            }
            Some(pem)
        }
        None => None,
    };
    let builder = ClientConfig::builder().with_root_certificates(roots);
    let client_tls = match (&tls.client_cert, &tls.client_key) {
        (None, None) => None,
        (Some(cert_path), Some(key_path)) => {
            let client_cert = read(cert_path, "client certificate")?;
            let client_key = read(key_path, "client key")?;
            let chain = parse_certificates(&client_cert, cert_path, "client certificate")?;
            let key = PrivateKeyDer::from_pem_slice(&client_key)
                .map_err(|error| bad_file(key_path, "client key", &error))?;
            // Checks that the key is usable and belongs to the certificate.
            builder.with_client_auth_cert(chain, key).map_err(|error| {
                StoreError::Config(format!(
                    "Redis TLS client certificate {} and key {}: {error}",
                    cert_path.display(),
                    key_path.display()
                ))
            })?;
            Some(ClientTlsConfig {
                client_cert,
                client_key,
            })
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(StoreError::Config(
                "Redis TLS: a client certificate and its key go together; give both or neither"
                    .to_owned(),
            ));
        }
    };
    Ok(Some(TlsCertificates {
        client_tls,
        root_cert,
    }))
}

/// What went wrong, in an operator's words, when `error` is a TLS failure; `None` for
/// any other error.
///
/// Told from rustls' own words: redis-rs passes a failed handshake on as an I/O error
/// whose text is rustls' message, and the cluster client keeps only that text. The unit
/// tests below pin those messages to the rustls version in use.
pub(super) fn failure(error: &RedisError) -> Option<String> {
    describe(&error.to_string())
}

fn describe(text: &str) -> Option<String> {
    let from = |marker: &str| text.find(marker).map(|at| &text[at..]);
    if let Some(reason) = from("invalid peer certificate") {
        let advice = if reason.contains("UnknownIssuer") || reason.contains("BadSignature") {
            "the server's certificate is not signed by a trusted CA (give the CA that signed it)"
        } else if reason.contains("NotValidForName") || reason.contains("not valid for name") {
            "the server's certificate does not name the host in the URL"
        } else {
            "the server's certificate was refused"
        };
        return Some(format!("TLS verification failed: {advice} ({reason})"));
    }
    if let Some(reason) = from("received fatal alert") {
        let advice =
            if reason.contains("CertificateRequired") || reason.contains("HandshakeFailure") {
                "it may require a client certificate (mutual TLS)"
            } else {
                "it may not trust the client certificate"
            };
        return Some(format!(
            "the server refused the TLS handshake ({reason}): {advice}"
        ));
    }
    if let Some(reason) = from("received corrupt message") {
        return Some(format!(
            "TLS failed ({reason}): is the server speaking TLS on this port?"
        ));
    }
    [
        "peer sent no certificates",
        "peer is incompatible",
        "peer misbehaved",
    ]
    .into_iter()
    .find_map(from)
    .map(|reason| format!("TLS failed: {reason}"))
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, StoreError> {
    // Read once at start-up and small: blocking the runtime for it is harmless.
    std::fs::read(path).map_err(|error| bad_file(path, what, &error))
}

fn parse_certificates(
    pem: &[u8],
    path: &Path,
    what: &str,
) -> Result<Vec<CertificateDer<'static>>, StoreError> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| bad_file(path, what, &error))?;
    if certificates.is_empty() {
        return Err(bad_file(path, what, &"no PEM certificate in it"));
    }
    Ok(certificates)
}

fn bad_file(path: &Path, what: &str, error: &dyn std::fmt::Display) -> StoreError {
    StoreError::Config(format!("Redis TLS {what} {}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(tls: &RedisTls) -> String {
        install_crypto_provider();
        match certificates(tls) {
            Err(StoreError::Config(message)) => message,
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }

    #[test]
    fn no_files_means_redis_rs_defaults() {
        assert!(certificates(&RedisTls::default()).unwrap().is_none());
    }

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing-ca.pem");
        let message = error(&RedisTls {
            ca_cert: Some(missing.clone()),
            ..RedisTls::default()
        });
        assert!(message.contains("CA certificate"), "{message}");
        assert!(message.contains(&*missing.to_string_lossy()), "{message}");

        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate\n").unwrap();
        for tls in [
            RedisTls {
                ca_cert: Some(garbage.clone()),
                ..RedisTls::default()
            },
            RedisTls {
                client_cert: Some(garbage.clone()),
                client_key: Some(garbage.clone()),
                ..RedisTls::default()
            },
        ] {
            let message = error(&tls);
            assert!(message.contains(&*garbage.to_string_lossy()), "{message}");
        }

        let broken = dir.path().join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let message = error(&RedisTls {
            ca_cert: Some(broken),
            ..RedisTls::default()
        });
        assert!(message.contains("broken.pem"), "{message}");
    }

    /// The messages redis-rs passes on are rustls' own, after its context.
    #[test]
    fn tls_failures_are_told_from_rustls_messages() {
        use rustls::{AlertDescription, CertificateError, InvalidMessage};
        let cases = [
            (
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
                "TLS verification failed: the server's certificate is not signed by a trusted CA",
            ),
            (
                rustls::Error::InvalidCertificate(CertificateError::BadSignature),
                "not signed by a trusted CA",
            ),
            (
                rustls::Error::InvalidCertificate(CertificateError::NotValidForName),
                "TLS verification failed: the server's certificate does not name the host",
            ),
            (
                rustls::Error::InvalidCertificate(CertificateError::Expired),
                "TLS verification failed: the server's certificate was refused",
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::CertificateRequired),
                "refused the TLS handshake (received fatal alert: CertificateRequired): it may \
                 require a client certificate",
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::UnknownCA),
                "may not trust the client certificate",
            ),
            (
                rustls::Error::InvalidMessage(InvalidMessage::InvalidContentType),
                "is the server speaking TLS on this port?",
            ),
            (
                rustls::Error::NoCertificatesPresented,
                "TLS failed: peer sent no",
            ),
        ];
        for (error, expected) in cases {
            // As the cluster client words it.
            let text = format!("Failed to create initial connections - Io: {error}");
            let described = describe(&text).unwrap_or_default();
            assert!(described.contains(expected), "{text}: {described}");
        }
        assert_eq!(describe("Connection refused (os error 111)"), None);
    }

    #[test]
    fn a_client_certificate_needs_its_key() {
        let message = error(&RedisTls {
            client_cert: Some("/etc/footfall/client.pem".into()),
            ..RedisTls::default()
        });
        assert!(message.contains("give both or neither"), "{message}");
    }
}
