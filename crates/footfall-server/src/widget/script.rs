//! The embed script, compiled into the binary, with its content hash, SRI value and
//! gzip form computed once.

use std::sync::LazyLock;

use base64::Engine as _;
use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha384};

/// The source of `widget.js`, commented for its readers; it is served as
/// [`served_form`] makes it.
pub const WIDGET_JS: &str = include_str!("../../assets/widget.js");

/// The script and what is derived from it.
#[derive(Debug)]
pub struct Script {
    /// The script as served.
    pub body: String,
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
    /// The served form of `source`, with its hash, SRI value and gzip form.
    pub fn new(source: &str) -> Script {
        let body = served_form(source);
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

/// `source` without its indentation, blank lines and whole-line `//` comments: a
/// quarter smaller, with every statement unchanged (no minifier, which would rename and
/// reorder; the script's own lines and the `/*! … */` licence line stay as written).
///
/// Only whole-line comments go, so a `//` inside a string or a regular expression is
/// never touched; the script keeps its statements one per line, so nothing depends on
/// a removed line break (no automatic semicolon insertion is relied on).
pub fn served_form(source: &str) -> String {
    let mut served = String::with_capacity(source.len());
    for line in source.lines().map(str::trim) {
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        served.push_str(line);
        served.push('\n');
    }
    served
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
        // The budget: under 3 KiB on the wire.
        assert!(script.gzip.len() < 3 * 1024, "{} bytes", script.gzip.len());
    }

    #[test]
    fn the_served_form_keeps_every_statement() {
        let source =
            "/*! licence */\n// a comment\n  var a = '//x'; // trailing\n\n  if (a) b();\n";
        assert_eq!(
            served_form(source),
            "/*! licence */\nvar a = '//x'; // trailing\nif (a) b();\n"
        );
        // Every line of the real script that is not a comment is served, in order.
        let served: Vec<&str> = script().body.lines().collect();
        let kept: Vec<&str> = WIDGET_JS
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("//"))
            .collect();
        assert_eq!(served, kept);
        assert!(script().body.len() < WIDGET_JS.len());
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
