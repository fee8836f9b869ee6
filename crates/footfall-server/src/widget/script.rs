//! The embed script, compiled into the binary, with its content hash, SRI value and
//! gzip form computed once.

use std::sync::LazyLock;

use base64::Engine as _;
use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha384};

/// The source of `widget.js`, served as written (compact enough not to need a minifier).
pub const WIDGET_JS: &str = include_str!("../../assets/widget.js");

/// The script and what is derived from it.
#[derive(Debug)]
pub struct Script {
    /// The script itself.
    pub body: &'static str,
    /// Its gzip form, for clients that accept it.
    pub gzip: Vec<u8>,
    /// The content hash in the versioned name: 16 hex digits of the SHA-384.
    pub hash: String,
    /// `/widget.<hash>.js`.
    pub versioned_path: String,
    /// The Subresource Integrity value, `sha384-<base64>`.
    pub integrity: String,
    /// The strong ETag, `"<hash>"`.
    pub etag: String,
}

static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(WIDGET_JS));

/// The embedded script.
pub fn script() -> &'static Script {
    &SCRIPT
}

impl Script {
    /// Derives the hash, SRI value and gzip form of `body`.
    pub fn new(body: &'static str) -> Script {
        let digest = Sha384::digest(body.as_bytes());
        let hash = hex::encode(&digest[..8]);
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        // Writing to a Vec cannot fail.
        let gzip = std::io::Write::write_all(&mut encoder, body.as_bytes())
            .and_then(|()| encoder.finish())
            .expect("gzip into memory cannot fail");
        Script {
            body,
            gzip,
            versioned_path: format!("/widget.{hash}.js"),
            etag: format!("\"{hash}\""),
            integrity: format!(
                "sha384-{}",
                base64::engine::general_purpose::STANDARD.encode(digest)
            ),
            hash,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    #[test]
    fn hash_sri_and_gzip_describe_the_script() {
        let script = script();
        assert_eq!(script.hash.len(), 16);
        assert!(script.versioned_path.contains(&script.hash));
        let digest = Sha384::digest(script.body.as_bytes());
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(script.integrity.trim_start_matches("sha384-"))
            .unwrap();
        assert_eq!(decoded, digest.as_slice());
        let mut unzipped = String::new();
        flate2::read::GzDecoder::new(script.gzip.as_slice())
            .read_to_string(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, script.body);
        // The budget: a few KB on the wire.
        assert!(script.gzip.len() < 3 * 1024, "{} bytes", script.gzip.len());
    }

    #[test]
    fn script_keeps_its_promises() {
        // What a strict CSP and a careful host page forbid.
        for banned in [
            "eval(",
            "new Function",
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "document.cookie",
            "localStorage",
            "sessionStorage",
            "setAttribute('style'",
            "onload=",
            "onclick",
        ] {
            assert!(!WIDGET_JS.contains(banned), "widget.js uses {banned}");
        }
        assert!(WIDGET_JS.contains("credentials: 'omit'"));
        assert!(WIDGET_JS.contains("'Content-Type': 'text/plain'"));
    }
}
