//! `footfall trust keygen | issue | verify` end to end through the real binary.
//!
//! Expected facts are checked independently of the CLI: the key file's mode from the
//! file system, the credential with the library's verifier against the printed key.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Output;

use footfall_server::trust::credential::{self, Credential};
use footfall_server::trust::{Keyring, KeysDocument};

use crate::support::text;

/// Runs `footfall` with `args` and nothing on its standard input.
fn footfall(args: &[&str]) -> Output {
    let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    crate::support::footfall(&args, b"")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temporary path")
}

#[test]
fn keygen_issue_verify_and_tamper() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let key = dir.path().join("issuer.key");

    let output = footfall(&["trust", "keygen", "--out", path(&key)]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let keyring = Keyring::load(&key).expect("keygen wrote a loadable key");
    assert!(
        stdout.contains(&format!("key id: {}\n", keyring.key_id())),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("public key: {}\n", keyring.public_key_base64())),
        "{stdout}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // Never overwrites a key.
    let again = footfall(&["trust", "keygen", "--out", path(&key)]);
    assert!(!again.status.success());
    assert_eq!(Keyring::load(&key).unwrap().key_id(), keyring.key_id());

    let keys = dir.path().join("keys.json");
    std::fs::write(
        &keys,
        serde_json::to_string(&keyring.keys_document()).unwrap(),
    )
    .unwrap();

    let output = footfall(&[
        "trust",
        "issue",
        "--key",
        path(&key),
        "--site",
        "caukee",
        "--issuer",
        "Tín nhiệm mạng",
        "--certificate",
        "TNM-1",
        "--hostname",
        "caukee.travinh.gov.vn",
        "--issued",
        "2025-01-15",
        "--expires",
        "2099-12-31",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let issued = text(&output.stdout);
    let credential: Credential = serde_json::from_str(&issued).expect("issue prints JSON");
    let verified = credential::verify(
        &credential,
        &KeysDocument::from_json(&std::fs::read_to_string(&keys).unwrap()).unwrap(),
    )
    .expect("the library verifies what the CLI issued");
    assert_eq!(verified.payload.issuer, "Tín nhiệm mạng");
    assert_eq!(verified.payload.status, "valid");

    let good = dir.path().join("good.json");
    std::fs::write(&good, &issued).unwrap();
    let output = footfall(&["trust", "verify", "--keys", path(&keys), path(&good)]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("signature: valid"), "{stdout}");
    assert!(stdout.contains("status now ("), "{stdout}");
    assert!(stdout.contains("\"certificate_id\": \"TNM-1\""), "{stdout}");

    // Tampering: one payload character, one signature character, the key id, another key.
    let mut tampered = Vec::new();
    let flip = |s: &str, i: usize| {
        let mut c: Vec<char> = s.chars().collect();
        c[i] = if c[i] == 'A' { 'B' } else { 'A' };
        c.into_iter().collect::<String>()
    };
    tampered.push(Credential {
        payload: flip(&credential.payload, 40),
        ..credential.clone()
    });
    tampered.push(Credential {
        signature: flip(&credential.signature, 10),
        ..credential.clone()
    });
    tampered.push(Credential {
        key_id: "0123456789abcdef".to_owned(),
        ..credential.clone()
    });
    let other = Keyring::generate().unwrap();
    let signed_by_other = credential::sign(&verified.payload, &other);
    tampered.push(Credential {
        key_id: credential.key_id,
        ..signed_by_other
    });
    for (index, bad) in tampered.iter().enumerate() {
        let file = dir.path().join(format!("bad-{index}.json"));
        std::fs::write(&file, serde_json::to_string(bad).unwrap()).unwrap();
        let output = footfall(&["trust", "verify", "--keys", path(&keys), path(&file)]);
        assert!(
            !output.status.success(),
            "tampered credential {index} verified"
        );
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains("verification FAILED") || stderr.contains("unknown key id"),
            "{index}: {stderr}"
        );
        assert!(output.stdout.is_empty(), "{index}: printed a payload");
    }

    // From a sites file, suspended: authentic, but --require-valid fails.
    let sites = dir.path().join("sites.toml");
    std::fs::write(
        &sites,
        "[[sites]]\nid = \"caukee\"\nhostnames = [\"caukee.travinh.gov.vn\"]\n\
         [sites.trust]\nissuer = \"TNM\"\ncertificate_id = \"TNM-2\"\n\
         hostnames = [\"caukee.travinh.gov.vn\"]\nissued = \"2025-01-15\"\n\
         expires = \"2099-01-01\"\nstatus = \"suspended\"\n",
    )
    .unwrap();
    let output = footfall(&[
        "trust",
        "issue",
        "--key",
        path(&key),
        "--sites-file",
        path(&sites),
        "--site",
        "caukee",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let suspended = dir.path().join("suspended.json");
    std::fs::write(&suspended, &output.stdout).unwrap();
    let output = footfall(&["trust", "verify", "--keys", path(&keys), path(&suspended)]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("status now ("));
    assert!(text(&output.stdout).contains("): suspended\n"));
    let output = footfall(&[
        "trust",
        "verify",
        "--require-valid",
        "--keys",
        path(&keys),
        path(&suspended),
    ]);
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("status now is suspended"));
}
