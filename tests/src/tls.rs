//! A throw-away certificate authority for TLS tests: a CA, a server certificate for
//! `127.0.0.1` and `localhost`, and a client certificate, as PEM files in a temporary
//! directory that lives as long as any clone of the [`TestPki`].
//!
//! ```no_run
//! use footfall_tests::redis_server::RedisServer;
//! use footfall_tests::tls::{ClientCertificates, TestPki};
//!
//! let pki = TestPki::generate();
//! let server = RedisServer::builder().tls(&pki, ClientCertificates::Required).start();
//! assert!(server.url().starts_with("rediss://127.0.0.1:"));
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use footfall::store::RedisTls;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A CA and the certificates it signed, as PEM files. Cheap to clone: clones share the
/// files, which are removed when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct TestPki {
    dir: Arc<tempfile::TempDir>,
}

/// Whether a TLS server asks clients for a certificate signed by its CA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientCertificates {
    /// `tls-auth-clients no`: any client may connect (the server is still verified).
    NotAsked,
    /// `tls-auth-clients yes`: mutual TLS; a client without a certificate is refused.
    Required,
}

impl TestPki {
    /// Makes a new CA (ECDSA P-256) and signs a server certificate (for `127.0.0.1`,
    /// `localhost`) and a client certificate with it.
    ///
    /// # Panics
    ///
    /// When the keys cannot be made or the files written.
    #[must_use]
    pub fn generate() -> TestPki {
        match Self::try_generate() {
            Ok(pki) => pki,
            Err(error) => panic!("making test certificates: {error:#}"),
        }
    }

    fn try_generate() -> anyhow::Result<TestPki> {
        let dir = tempfile::Builder::new()
            .prefix("footfall-pki-")
            .tempdir()
            .context("creating a directory for the certificates")?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        // A name of its own: a CA that shared another's name would be taken for its issuer
        // and fail on the signature, rather than as the unknown CA it is.
        static CAS_MADE: AtomicU64 = AtomicU64::new(0);
        let n = CAS_MADE.fetch_add(1, Ordering::Relaxed);
        ca.distinguished_name.push(
            DnType::CommonName,
            format!("footfall test CA {}-{n}", std::process::id()),
        );
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
        write(dir.path(), "ca.pem", &ca.pem())?;

        let leaf = |name: &str, names: &[&str], usages: Vec<ExtendedKeyUsagePurpose>| {
            let names: Vec<String> = names.iter().map(|&name| name.to_owned()).collect();
            let mut params = CertificateParams::new(names)?;
            params.distinguished_name.push(DnType::CommonName, name);
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = usages;
            let key = KeyPair::generate()?;
            let cert = params.signed_by(&key, &ca)?;
            write(dir.path(), &format!("{name}.pem"), &cert.pem())?;
            write(dir.path(), &format!("{name}.key"), &key.serialize_pem())
        };
        // Cluster nodes present the server certificate to each other as clients too.
        leaf(
            "server",
            &["127.0.0.1", "localhost"],
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        )?;
        leaf("client", &[], vec![ExtendedKeyUsagePurpose::ClientAuth])?;
        Ok(TestPki { dir: Arc::new(dir) })
    }

    /// The CA certificate.
    #[must_use]
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The server certificate (for `127.0.0.1` and `localhost`).
    #[must_use]
    pub fn server_cert(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }

    /// The server certificate's private key.
    #[must_use]
    pub fn server_key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }

    /// The client certificate.
    #[must_use]
    pub fn client_cert(&self) -> PathBuf {
        self.dir.path().join("client.pem")
    }

    /// The client certificate's private key.
    #[must_use]
    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client.key")
    }

    /// Store options trusting this CA, without a client certificate.
    #[must_use]
    pub fn trust(&self) -> RedisTls {
        RedisTls {
            ca_cert: Some(self.ca_cert()),
            ..RedisTls::default()
        }
    }

    /// Store options trusting this CA and presenting the client certificate.
    #[must_use]
    pub fn trust_with_client_cert(&self) -> RedisTls {
        RedisTls {
            client_cert: Some(self.client_cert()),
            client_key: Some(self.client_key()),
            ..self.trust()
        }
    }

    /// The certificates for a redis-rs client of a server of this CA, with the client
    /// certificate (harmless where the server does not ask for one).
    pub(crate) fn redis_certificates(&self) -> anyhow::Result<redis::TlsCertificates> {
        let read = |path: PathBuf| {
            std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
        };
        Ok(redis::TlsCertificates {
            client_tls: Some(redis::ClientTlsConfig {
                client_cert: read(self.client_cert())?,
                client_key: read(self.client_key())?,
            }),
            root_cert: Some(read(self.ca_cert())?),
        })
    }
}

/// Makes ring rustls' process-wide provider for the helper connections, as the store does
/// (whichever installs first wins; both install ring).
pub(crate) fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

fn write(dir: &Path, name: &str, pem: &str) -> anyhow::Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, pem).with_context(|| format!("writing {}", path.display()))
}
