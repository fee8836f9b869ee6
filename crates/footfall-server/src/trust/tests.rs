//! Tests of the trust module: status derivation, validation, credentials, renderers
//! (snapshots under `snapshots/`, each checked by eye), the XSS corpus, and the routes.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use ed25519_dalek::SigningKey;
use expect_test::expect_file;
use footfall::clock::{Clock, ManualClock};
use http_body_util::BodyExt;
use jiff::Timestamp;
use tower::ServiceExt;

use super::credential::{self, Credential, CredentialError, CredentialPayload};
use super::render::{self, PageInput, Verdict};
use super::*;
use crate::describe::Lang;
use crate::sites::{Site, SiteSettings, Sites};

fn ts(text: &str) -> Timestamp {
    text.parse().expect("a test timestamp")
}

fn settings() -> TrustSettings {
    TrustSettings {
        issuer: "Tín nhiệm mạng".to_owned(),
        certificate_id: "TNM-2025-0042".to_owned(),
        hostnames: vec![
            "caukee.travinh.gov.vn".to_owned(),
            "www.caukee.travinh.gov.vn".to_owned(),
        ],
        level: "Cấp độ 2".to_owned(),
        issued: "2025-01-15".to_owned(),
        expires: "2027-01-14".to_owned(),
        status: "valid".to_owned(),
        tinnhiemmang: Some(TinnhiemmangSettings {
            domain: "caukee.travinh.gov.vn".to_owned(),
            slug: "caukee-travinh-gov-vn-1234".to_owned(),
        }),
    }
}

fn record() -> TrustRecord {
    TrustRecord::from_settings(&settings(), "Asia/Ho_Chi_Minh", "trust").unwrap()
}

fn keyring() -> Keyring {
    Keyring::from_signing_key(SigningKey::from_bytes(&[7u8; 32]))
}

// ----- status derivation and validation -----

#[test]
fn plain_dates_are_whole_days_in_the_site_zone() {
    let record = record();
    // 2025-01-15 00:00 at UTC+7 is 2025-01-14 17:00 UTC; "expires 2027-01-14" covers that
    // whole local day, so validity ends at 2027-01-15 00:00 local = 2027-01-14 17:00 UTC.
    assert_eq!(record.issued, ts("2025-01-14T17:00:00Z"));
    assert_eq!(record.expires, ts("2027-01-14T17:00:00Z"));
    let rfc = TrustSettings {
        issued: "2025-01-15T08:30:00+07:00".to_owned(),
        expires: "2026-01-01T00:00:00Z".to_owned(),
        ..settings()
    };
    let record = TrustRecord::from_settings(&rfc, "Asia/Ho_Chi_Minh", "trust").unwrap();
    assert_eq!(record.issued, ts("2025-01-15T01:30:00Z"));
    assert_eq!(record.expires, ts("2026-01-01T00:00:00Z"));
}

#[test]
fn status_derivation_table_at_the_edges() {
    let clock = ManualClock::new(ts("2020-01-01T00:00:00Z"));
    let valid = record();
    let suspended = TrustRecord {
        status: SetStatus::Suspended,
        ..record()
    };
    let revoked = TrustRecord {
        status: SetStatus::Revoked,
        ..record()
    };
    use LiveStatus::*;
    let table = [
        ("2025-01-14T16:59:59.999999999Z", NotYetValid),
        ("2025-01-14T17:00:00Z", Valid),
        ("2026-06-01T00:00:00Z", Valid),
        ("2027-01-14T16:59:59.999999999Z", Valid),
        ("2027-01-14T17:00:00Z", Expired),
        ("2030-01-01T00:00:00Z", Expired),
    ];
    for (at, expected) in table {
        clock.set(ts(at));
        assert_eq!(valid.status_at(clock.now()), expected, "{at}");
        // The issuer's word wins over the dates, before, during and after.
        assert_eq!(suspended.status_at(clock.now()), Suspended, "{at}");
        assert_eq!(revoked.status_at(clock.now()), Revoked, "{at}");
    }
}

#[test]
fn validation_errors_name_the_setting() {
    type Change = Box<dyn Fn(&mut TrustSettings)>;
    let cases: Vec<(Change, &str)> = vec![
        (Box::new(|t| t.issuer = " ".into()), "issuer"),
        (Box::new(|t| t.issuer = "a\u{202e}b".into()), "issuer"),
        (
            Box::new(|t| t.certificate_id = "a\u{2028}b".into()),
            "certificate_id",
        ),
        (Box::new(|t| t.level = "x".repeat(121)), "level"),
        (Box::new(|t| t.hostnames.clear()), "hostnames"),
        (
            Box::new(|t| t.hostnames[1] = "*.travinh.gov.vn".into()),
            "hostnames[1]",
        ),
        (
            Box::new(|t| t.hostnames[0] = "a\"b.vn".into()),
            "hostnames[0]",
        ),
        (Box::new(|t| t.issued = "15/01/2025".into()), "issued"),
        (Box::new(|t| t.expires = "2025-01-14".into()), "expires"),
        (Box::new(|t| t.status = "expired".into()), "status"),
        (
            Box::new(|t| t.tinnhiemmang.as_mut().unwrap().domain = "x.vn\"><script>".into()),
            "tinnhiemmang.domain",
        ),
        (
            Box::new(|t| t.tinnhiemmang.as_mut().unwrap().slug = "A_b".into()),
            "tinnhiemmang.slug",
        ),
    ];
    for (change, setting) in cases {
        let mut site = SiteSettings::new("caukee", &["caukee.travinh.gov.vn"]);
        let mut trust = settings();
        change(&mut trust);
        site.trust = Some(trust);
        let error = Site::from_settings(site, "sites[0]").unwrap_err();
        assert_eq!(
            error.setting,
            format!("sites[0].trust.{setting}"),
            "{error}"
        );
    }
}

#[test]
fn sites_file_carries_a_trust_table() {
    let text = r#"
        [[sites]]
        id = "caukee"
        hostnames = ["caukee.travinh.gov.vn"]
        [sites.trust]
        issuer = "Tín nhiệm mạng"
        certificate_id = "TNM-1"
        hostnames = ["caukee.travinh.gov.vn"]
        issued = "2025-01-15"
        expires = "2027-01-14"
        tinnhiemmang = { domain = "caukee.travinh.gov.vn", slug = "caukee-1" }
    "#;
    let sites = crate::sites::parse_sites_file(text).unwrap();
    let record = sites[0].trust_record().unwrap().unwrap();
    assert_eq!(record.status, SetStatus::Valid, "status defaults to valid");
    assert!(record.certifies_host("CAUKEE.travinh.gov.vn."));
    assert!(!record.certifies_host("evil.caukee.travinh.gov.vn"));
    let unknown = text.replace("issuer =", "colour = \"red\"\n        issuer =");
    assert!(crate::sites::parse_sites_file(&unknown).is_err());
}

// ----- credentials -----

fn payload() -> CredentialPayload {
    payload_signed_by(&keyring())
}

fn payload_signed_by(keyring: &Keyring) -> CredentialPayload {
    CredentialPayload::new("caukee", "Cầu Kè", &record(), keyring.key_id())
}

#[test]
fn credential_snapshot_and_round_trip() {
    let keyring = keyring();
    let credential = credential::sign(&payload(), &keyring);
    let text = serde_json::to_string_pretty(&credential).unwrap();
    // Reviewed: the signature in this snapshot verifies with an independent Ed25519
    // implementation (Python `cryptography`) for the public key of seed [7; 32], and the
    // key id is the first 16 hex digits of SHA-256 of that public key.
    expect_file!["snapshots/credential.json"].assert_eq(&text);
    // The signed bytes, decoded independently of the code under test.
    let bytes = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        &credential.payload,
    )
    .unwrap();
    expect_file!["snapshots/credential-payload.json"]
        .assert_eq(std::str::from_utf8(&bytes).unwrap());

    let verified = credential::verify(&credential, &keyring.keys_document()).unwrap();
    assert_eq!(verified.payload, payload());
    assert_eq!(verified.payload.status, "valid");
    assert_eq!(
        verified.fingerprint,
        credential::fingerprint(&credential).unwrap()
    );
    // Offline status: the dates decide at the verifier's clock.
    for (at, expected) in [
        ("2025-01-14T16:59:59Z", LiveStatus::NotYetValid),
        ("2026-03-01T08:00:00Z", LiveStatus::Valid),
        ("2027-01-14T17:00:00Z", LiveStatus::Expired),
    ] {
        assert_eq!(verified.payload.status_at(ts(at)), Some(expected), "{at}");
    }
    // The served document is the envelope, indented, with a final newline.
    let document = credential::to_document(&credential);
    assert_eq!(document, format!("{text}\n"));
    assert_eq!(
        serde_json::from_str::<Credential>(&document).unwrap(),
        credential
    );
}

#[test]
fn issuance_is_deterministic_and_the_fingerprint_follows_the_content() {
    let keyring = keyring();
    let fingerprint_of = |site_name: &str, record: &TrustRecord, keyring: &Keyring| {
        let credential = credential::issue("caukee", site_name, record, keyring);
        credential::fingerprint(&credential).unwrap()
    };
    let base = fingerprint_of("Cầu Kè", &record(), &keyring);
    // Issued again, from a record parsed again, with a key loaded again from its file:
    // the same bytes, so the same fingerprint (and signature).
    let reloaded = Keyring::from_key_file(&keyring.to_key_file()).unwrap();
    assert_eq!(fingerprint_of("Cầu Kè", &record(), &reloaded), base);
    assert_eq!(
        credential::issue("caukee", "Cầu Kè", &record(), &keyring),
        credential::issue("caukee", "Cầu Kè", &record(), &reloaded)
    );
    // Any change of what it states gives another fingerprint.
    type Change = fn(&mut TrustSettings);
    let changes: [(&str, Change); 7] = [
        ("level", |t| t.level = "Cấp độ 3".into()),
        ("hostnames", |t| t.hostnames.truncate(1)),
        ("expires", |t| t.expires = "2027-01-15".into()),
        ("issued", |t| t.issued = "2025-01-16".into()),
        ("status", |t| t.status = "suspended".into()),
        ("issuer", |t| t.issuer = "Another issuer".into()),
        ("certificate", |t| t.certificate_id = "TNM-2025-0043".into()),
    ];
    let mut seen = std::collections::HashSet::from([base.clone()]);
    for (what, change) in changes {
        let mut settings = settings();
        change(&mut settings);
        let changed = TrustRecord::from_settings(&settings, "Asia/Ho_Chi_Minh", "trust").unwrap();
        assert!(
            seen.insert(fingerprint_of("Cầu Kè", &changed, &keyring)),
            "changing {what} kept a fingerprint"
        );
    }
    assert_ne!(fingerprint_of("Cau Ke", &record(), &keyring), base);
    let other = Keyring::from_signing_key(SigningKey::from_bytes(&[9u8; 32]));
    assert_ne!(fingerprint_of("Cầu Kè", &record(), &other), base);
}

#[test]
fn earlier_formats_and_derived_statuses_are_refused_by_name() {
    let keyring = keyring();
    let keys = keyring.keys_document();
    let sign_json = |json: serde_json::Value| {
        let bytes = serde_json::to_vec(&json).unwrap();
        let signature = ed25519_dalek::Signer::sign(keyring.signing_key(), &bytes);
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        Credential {
            key_id: keyring.key_id().to_owned(),
            payload: base64::Engine::encode(&b64, &bytes),
            signature: base64::Engine::encode(&b64, signature.to_bytes()),
        }
    };
    let current = serde_json::to_value(payload()).unwrap();
    // A version 1 credential: signing minute included, properly signed by our key.
    let mut v1 = current.clone();
    v1["type"] = "footfall-trust-credential/1".into();
    v1["issued_at"] = "2026-03-01T08:00:00Z".into();
    let error = credential::verify(&sign_json(v1), &keys).unwrap_err();
    assert!(matches!(error, CredentialError::BadPayload(_)), "{error}");
    assert!(
        error.to_string().contains("fetch the credential again"),
        "{error}"
    );
    // A status that only a clock can tell is not the issuer's to sign.
    let mut expired = current.clone();
    expired["status"] = "expired".into();
    let error = credential::verify(&sign_json(expired), &keys).unwrap_err();
    assert!(error.to_string().contains("unknown status"), "{error}");
    // The same JSON as signed by the code verifies: the helper signs faithfully.
    assert!(credential::verify(&sign_json(current), &keys).is_ok());
}

/// Changes the character at `index` of a base64url string to another base64url one.
fn flip(text: &str, index: usize) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    chars[index] = if chars[index] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

#[test]
fn every_tampered_credential_fails() {
    let keyring = keyring();
    let keys = keyring.keys_document();
    let good = credential::sign(&payload(), &keyring);
    for index in 0..good.payload.len() {
        let bad = Credential {
            payload: flip(&good.payload, index),
            ..good.clone()
        };
        assert!(
            credential::verify(&bad, &keys).is_err(),
            "payload char {index}"
        );
    }
    for index in 0..good.signature.len() {
        let bad = Credential {
            signature: flip(&good.signature, index),
            ..good.clone()
        };
        assert!(
            credential::verify(&bad, &keys).is_err(),
            "signature char {index}"
        );
    }
    // An unknown key id.
    let bad = Credential {
        key_id: "0123456789abcdef".to_owned(),
        ..good.clone()
    };
    assert!(matches!(
        credential::verify(&bad, &keys),
        Err(CredentialError::Key(KeyError::UnknownKey(_)))
    ));
    // Signed by another key that claims to be ours.
    let other = Keyring::from_signing_key(SigningKey::from_bytes(&[9u8; 32]));
    let forged = Credential {
        key_id: keyring.key_id().to_owned(),
        ..credential::sign(&payload(), &other)
    };
    assert!(matches!(
        credential::verify(&forged, &keys),
        Err(CredentialError::BadSignature(_))
    ));
    // Another key's honest credential, whose payload names our key: signature fine,
    // envelope and payload disagree.
    let mut both = keys.clone();
    both.keys.extend(other.keys_document().keys);
    let mismatched = credential::sign(&payload(), &other);
    assert!(matches!(
        credential::verify(&mismatched, &both),
        Err(CredentialError::BadPayload(_))
    ));
    // Padding or whitespace is another spelling: refused.
    let padded = Credential {
        signature: format!("{}==", good.signature),
        ..good.clone()
    };
    assert!(credential::verify(&padded, &keys).is_err());
    assert!(credential::verify(&good, &keys).is_ok());
}

#[test]
fn credentials_signed_before_a_rotation_verify_against_the_new_document() {
    let old = Keyring::generate().unwrap();
    let issued_before = credential::sign(&payload_signed_by(&old), &old);
    let new = Keyring::generate().unwrap();
    // Without the retired key the old credential names an unknown key…
    assert!(credential::verify(&issued_before, &new.keys_document()).is_err());
    // …with it, both the old and the new credential verify.
    let rotated = new.clone().with_retired(&old.keys_document()).unwrap();
    let published = rotated.keys_document();
    assert!(credential::verify(&issued_before, &published).is_ok());
    let issued_after = credential::sign(&payload_signed_by(&rotated), &rotated);
    assert_eq!(issued_after.key_id, new.key_id());
    assert!(credential::verify(&issued_after, &published).is_ok());
}

// ----- renderers -----

#[test]
fn widths_by_character_class() {
    // Hand-computed from the class table: T .74, i .33, n .61, space .35, h .61, e .61,
    // m 1.0, a .61, g .61 → 8.37 em × 11 px = 92.07 → 92.1 px.
    assert_eq!(render::text_width_tenths("Tín nhiệm mạng"), 921);
    // Precomposed letters measure as their base letters, decomposed marks as nothing.
    assert_eq!(render::text_width_tenths("Tin nhiem mang"), 921);
    assert_eq!(
        render::text_width_tenths("Ti\u{301}n nhie\u{302}\u{323}m ma\u{323}ng"),
        921
    );
    assert_eq!(
        render::text_width_tenths("Đ"),
        render::text_width_tenths("D")
    );
    assert_eq!(render::text_width_tenths(""), 0);
    assert_eq!(render::text_width_tenths("漢"), 110);
}

fn all_verdicts() -> [(Verdict, &'static str); 6] {
    [
        (Verdict::Status(LiveStatus::Valid), "valid"),
        (Verdict::Status(LiveStatus::NotYetValid), "not-yet-valid"),
        (Verdict::Status(LiveStatus::Expired), "expired"),
        (Verdict::Status(LiveStatus::Suspended), "suspended"),
        (Verdict::Status(LiveStatus::Revoked), "revoked"),
        (Verdict::NotForThisDomain, "wrong-domain"),
    ]
}

#[test]
fn badge_snapshots() {
    let record = record();
    for (verdict, name) in all_verdicts() {
        for lang in [Lang::Vi, Lang::En] {
            let svg = render::badge_svg(&record, "Cầu Kè", verdict, lang);
            let path = format!(
                "{}/src/trust/snapshots/badge-{name}.{}.svg",
                env!("CARGO_MANIFEST_DIR"),
                lang.code()
            );
            expect_test::expect_file![path].assert_eq(&svg);
        }
    }
}

#[test]
fn badges_differ_by_colour_and_text() {
    let record = record();
    let mut seen = std::collections::HashSet::new();
    for (verdict, _) in all_verdicts() {
        let svg = render::badge_svg(&record, "Cầu Kè", verdict, Lang::En);
        assert!(seen.insert(render::status_colour(verdict)));
        assert!(svg.contains(&format!(
            ">{}</text>",
            render::status_text(verdict, Lang::En)
        )));
    }
}

/// The verification page of `record` for site caukee named `site_name`, showing the
/// real credential the test key signs for it, as the route does.
fn page(record: &TrustRecord, site_name: &str, visitor: Option<&str>, lang: Lang) -> String {
    let keyring = keyring();
    let credential = credential::issue("caukee", site_name, record, &keyring);
    render::verification_page(&PageInput {
        site_id: "caukee",
        site_name,
        record,
        status: LiveStatus::Valid,
        time_zone: "Asia/Ho_Chi_Minh",
        key_id: keyring.key_id(),
        fingerprint: &credential::fingerprint(&credential).unwrap(),
        credential_json: &credential::to_document(&credential),
        payload_json: &credential::payload_document(&credential).unwrap(),
        visitor_host: visitor,
        lang,
    })
}

#[test]
fn verification_page_snapshots() {
    let record = record();
    expect_file!["snapshots/page.vi.html"].assert_eq(&page(
        &record,
        "Cầu Kè",
        Some("caukee.travinh.gov.vn"),
        Lang::Vi,
    ));
    expect_file!["snapshots/page-wrong-domain.en.html"].assert_eq(&page(
        &record,
        "Cầu Kè",
        Some("caukee-travinh.example"),
        Lang::En,
    ));
}

#[test]
fn page_says_what_is_certified_in_words() {
    let record = record();
    let vi = page(&record, "Cầu Kè", None, Lang::Vi);
    assert!(
        vi.contains(
            "<p>Tín nhiệm mạng chứng nhận trang web Cầu Kè, mức “Cấp độ 2”, số chứng nhận \
             TNM-2025-0042. Chứng nhận chỉ áp dụng cho đúng <code>caukee.travinh.gov.vn</code> \
             và <code>www.caukee.travinh.gov.vn</code>; trang ở tên miền khác, kể cả tên miền \
             con, không được chứng nhận."
        ),
        "{vi}"
    );
    let en = page(&record, "Cầu Kè", None, Lang::En);
    assert!(
        en.contains(
            "<p>Tín nhiệm mạng certifies the website Cầu Kè at the level “Cấp độ 2”, \
             certificate TNM-2025-0042. It covers exactly <code>caukee.travinh.gov.vn</code> \
             and <code>www.caukee.travinh.gov.vn</code>; a page on any other hostname, a \
             subdomain included, is not certified."
        ),
        "{en}"
    );
    // Three hostnames read as a list; no level is said in words too.
    let mut settings = settings();
    settings.level.clear();
    settings.hostnames.push("caukee.vn".to_owned());
    let record = TrustRecord::from_settings(&settings, "Asia/Ho_Chi_Minh", "trust").unwrap();
    let en = page(&record, "Cầu Kè", None, Lang::En);
    assert!(
        en.contains(
            "Cầu Kè, with no level stated, certificate TNM-2025-0042. It covers exactly \
             <code>caukee.travinh.gov.vn</code>, <code>www.caukee.travinh.gov.vn</code> and \
             <code>caukee.vn</code>;"
        ),
        "{en}"
    );
    let vi = page(&record, "Cầu Kè", None, Lang::Vi);
    assert!(
        vi.contains("Cầu Kè, không ghi cấp độ, số chứng nhận"),
        "{vi}"
    );
}

#[test]
fn page_shows_the_last_valid_day_as_configured() {
    // (issued, expires) as an operator may write them, and what the page must say.
    let cases = [
        // Dates: from the start of the first day through the end of the last one.
        (
            "2025-06-01",
            "2027-05-31",
            "ngày <time datetime=\"2025-06-01\">01/06/2025</time> đến hết ngày \
             <time datetime=\"2027-05-31\">31/05/2027</time> (giờ Asia/Ho_Chi_Minh)",
            "from <time datetime=\"2025-06-01\">2025-06-01</time> through \
             <time datetime=\"2027-05-31\">2027-05-31</time> (Asia/Ho_Chi_Minh time)",
        ),
        // The same period as instants at local midnight reads the same.
        (
            "2025-06-01T00:00:00+07:00",
            "2027-06-01T00:00:00+07:00",
            "đến hết ngày <time datetime=\"2027-05-31\">31/05/2027</time>",
            "through <time datetime=\"2027-05-31\">2027-05-31</time>",
        ),
        // An end at another time of day is that instant, never a day.
        (
            "2025-06-01T08:30:00+07:00",
            "2027-05-31T10:00:00Z",
            "từ <time datetime=\"2025-06-01T08:30:00+07:00\">08:30 ngày 01/06/2025</time> đến \
             trước <time datetime=\"2027-05-31T17:00:00+07:00\">17:00 ngày 31/05/2027</time>",
            "until <time datetime=\"2027-05-31T17:00:00+07:00\">2027-05-31 17:00</time>",
        ),
    ];
    for (issued, expires, vi_text, en_text) in cases {
        let settings = TrustSettings {
            issued: issued.to_owned(),
            expires: expires.to_owned(),
            ..settings()
        };
        let record = TrustRecord::from_settings(&settings, "Asia/Ho_Chi_Minh", "trust").unwrap();
        let vi = page(&record, "Cầu Kè", None, Lang::Vi);
        let en = page(&record, "Cầu Kè", None, Lang::En);
        assert!(vi.contains(vi_text), "{issued} {expires}:\n{vi}");
        assert!(en.contains(en_text), "{issued} {expires}:\n{en}");
        // The exclusive end instant is never shown as a day of validity.
        assert!(!vi.contains("01/06/2027"), "{vi}");
        assert!(!en.contains("2027-06-01"), "{en}");
    }
}

#[test]
fn page_shows_the_credential_it_describes_and_names_the_signing_key() {
    let record = record();
    let keyring = keyring();
    let credential = credential::issue("caukee", "Cầu Kè", &record, &keyring);
    for lang in [Lang::Vi, Lang::En] {
        let html = page(&record, "Cầu Kè", None, lang);
        // The JSON "below" is there, escaped, exactly as served, and linked raw.
        let shown = html
            .split_once("<pre><code>")
            .and_then(|(_, rest)| rest.split_once("</code></pre>"))
            .map(|(json, _)| json.replace("&quot;", "\""))
            .expect("the credential in a <pre><code>");
        assert_eq!(
            format!("{shown}\n"),
            credential::to_document(&credential),
            "{html}"
        );
        assert!(html.contains("(<a href=\"/trust/caukee.json\">/trust/caukee.json</a>)"));
        assert!(html.contains(&"\"site\": \"caukee\"".replace('"', "&quot;")));
        // Signed by the service's key, named by its id as published; not by the
        // certifying organisation.
        assert!(html.contains(&format!("<code>{}</code>", keyring.key_id())));
        assert!(html.contains("<a href=\"/.well-known/footfall-trust-keys\">"));
        assert!(!html.contains("khóa Ed25519 của tổ chức chứng nhận"));
        assert!(!html.contains("the issuer's Ed25519 key"));
    }
    let en = page(&record, "Cầu Kè", None, Lang::En);
    assert!(en.contains(&format!(
        "This footfall service signs the record above with its issuer key (Ed25519, key id \
         <code>{}</code>)",
        keyring.key_id()
    )));
    assert!(en.contains("the certificate itself is Tín nhiệm mạng's"));
}

#[test]
fn tinnhiemmang_snippet_is_the_official_one_and_refuses_markup() {
    assert_eq!(
        tinnhiemmang_snippet("tuyengiao.travinh.gov.vn", "tuyengiao-travinh-gov-vn-1652").unwrap(),
        "<a href=\"https://tinnhiemmang.vn/danh-ba-tin-nhiem/tuyengiao-travinh-gov-vn-1652\" \
         title=\"Chung nhan Tin Nhiem Mang\" target=\"_blank\"><img \
         src=\"https://tinnhiemmang.vn/handle_cert?id=tuyengiao.travinh.gov.vn\" width=\"150px\" \
         height=\"auto\" alt=\"Chung nhan Tin Nhiem Mang\"></a>"
    );
    for (domain, slug) in [
        ("x.vn\"><script>alert(1)</script>", "ok"),
        ("x.vn", "a\" onerror=\"alert(1)"),
        ("X.VN", "ok"),
        ("x.vn", "Ok"),
        ("x.vn", ""),
        ("", "ok"),
        ("x.vn/../evil", "ok"),
        ("x.vn", "a/b"),
        ("x.vn", "a&b"),
    ] {
        assert_eq!(
            tinnhiemmang_snippet(domain, slug),
            None,
            "{domain:?} {slug:?}"
        );
    }
}

const XSS_CORPUS: &[&str] = &[
    "<script>alert(1)</script>",
    "\"><svg onload=alert(1)>",
    "'><img src=x onerror=alert(1)>",
    "Tom & Jerry &amp; &lt;",
    "\"double\" and 'single'",
    "</title><script>alert(1)</script>",
    "</text></svg><script>alert(1)</script>",
    "a\u{2028}b\u{2029}c",
    "\u{202e}nv.vog.kee\u{202c}",
    "\u{2067}isolate\u{2069}\u{200f}",
    "-->",
    "<!--",
    "]]><![CDATA[",
    "\0nul\u{7}bell\u{1b}[31m",
];

/// The characters that can change markup structure, counted.
fn structure(markup: &str) -> [usize; 4] {
    ['<', '>', '"', '\''].map(|c| markup.matches(c).count())
}

fn assert_inert(markup: &str, baseline: &str, what: &str) {
    assert_eq!(
        structure(markup),
        structure(baseline),
        "{what}: markup characters leaked"
    );
    for (index, _) in markup.match_indices('&') {
        let rest = &markup[index..];
        assert!(
            ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"]
                .iter()
                .any(|entity| rest.starts_with(entity)),
            "{what}: bare & at {index}"
        );
    }
    assert!(
        !markup
            .chars()
            .any(|c| crate::text::is_disallowed_char(c) && c != '\n'),
        "{what}: a control, separator or bidi character survived"
    );
}

#[test]
fn xss_corpus_stays_text_in_every_configured_field() {
    type Set = fn(&mut TrustRecord, &mut String, &str);
    let fields: [(&str, Set); 5] = [
        ("issuer", |r, _, t| r.issuer = t.to_owned()),
        ("certificate", |r, _, t| r.certificate_id = t.to_owned()),
        ("level", |r, _, t| r.level = t.to_owned()),
        ("site name", |_, n, t| *n = t.to_owned()),
        ("hostname", |r, _, t| r.hostnames[0] = t.to_owned()),
    ];
    for (field, set) in fields {
        let render_with = |text: &str| {
            let mut record = record();
            let mut name = "Cầu Kè".to_owned();
            set(&mut record, &mut name, text);
            let mut out = Vec::new();
            for (verdict, _) in all_verdicts() {
                for lang in [Lang::Vi, Lang::En] {
                    out.push(render::badge_svg(&record, &name, verdict, lang));
                }
            }
            for lang in [Lang::Vi, Lang::En] {
                out.push(page(&record, &name, Some(text), lang));
            }
            out
        };
        let baseline = render_with("plain");
        for attack in XSS_CORPUS {
            for (markup, base) in render_with(attack).iter().zip(&baseline) {
                assert_inert(markup, base, &format!("{field} = {attack:?}"));
            }
        }
    }
}

// ----- routes -----

const NOW: &str = "2026-03-01T08:00:30Z";

fn app(clock: Arc<ManualClock>) -> axum::Router {
    instance(
        clock,
        Arc::new(footfall::store::AnyStore::Memory(
            footfall::store::MemoryStore::new(),
        )),
    )
    .0
}

/// The admin token of [`instance`].
const ADMIN_TOKEN: &str = "trust-tests-admin-token-0123456789";

/// One service instance over `store` with the caukee record and the test key: its public
/// and internal routers. Two instances over one store are a restart.
fn instance(
    clock: Arc<ManualClock>,
    store: Arc<footfall::store::AnyStore>,
) -> (axum::Router, axum::Router) {
    let mut caukee = SiteSettings::new("caukee", &["caukee.travinh.gov.vn"]);
    caukee.name = "Cầu Kè".to_owned();
    caukee.trust = Some(settings());
    let sites = Sites::new([
        Site::from_settings(caukee, "").unwrap(),
        // A site without a trust record.
        Site::from_settings(SiteSettings::new("plain", &["localhost"]), "").unwrap(),
    ]);
    let options = crate::state::Options {
        trust_keyring: Some(keyring()),
        admin_tokens: vec![ADMIN_TOKEN.to_owned()],
        ..crate::state::Options::default()
    };
    let (state, _flusher) = crate::state::AppState::new(store, clock, sites, options).unwrap();
    let limits = crate::app::RequestLimits::default();
    (
        crate::app::public_app(state.clone(), limits),
        crate::app::internal_app(state, limits),
    )
}

async fn get(
    app: &axum::Router,
    uri: &str,
    headers: &[(header::HeaderName, &str)],
) -> (StatusCode, ::http::HeaderMap, String) {
    let mut request = Request::get(uri);
    for (name, value) in headers {
        request = request.header(name, *value);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8(bytes.to_vec()).unwrap(),
    )
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(ts(NOW)))
}

#[tokio::test]
async fn badge_route_checks_the_referring_domain() {
    let clock = clock();
    let app = app(Arc::clone(&clock));
    let certified = [(
        header::REFERER,
        "https://caukee.travinh.gov.vn/tin-tuc/1.html",
    )];
    let (status, headers, body) = get(&app, "/trust/caukee/badge.svg", &certified).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "image/svg+xml");
    assert_eq!(
        headers[header::CONTENT_SECURITY_POLICY],
        "default-src 'none'; style-src 'unsafe-inline'"
    );
    assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
    assert_eq!(headers[header::VARY], "Referer, Origin");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert!(body.contains(">hợp lệ</text>"), "{body}");
    assert!(body.contains("role=\"img\""));

    // Same badge, known ETag: 304.
    let etag = headers[header::ETAG].to_str().unwrap().to_owned();
    let (status, _, body) = get(
        &app,
        "/trust/caukee/badge.svg",
        &[certified[0].clone(), (header::IF_NONE_MATCH, &etag)],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());

    // Another domain, a look-alike, Origin only, or nothing at all.
    for headers in [
        vec![(header::REFERER, "https://caukee-travinh.example/")],
        vec![(
            header::REFERER,
            "https://caukee.travinh.gov.vn.evil.example/",
        )],
        vec![(header::ORIGIN, "https://evil.example")],
        vec![],
    ] {
        let (status, _, body) = get(&app, "/trust/caukee/badge.svg", &headers).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            body.contains(">không xác thực cho tên miền này</text>"),
            "{headers:?}"
        );
    }
    let (_, _, body) = get(
        &app,
        "/trust/caukee/badge.svg?lang=en",
        &[(header::ORIGIN, "https://www.caukee.travinh.gov.vn")],
    )
    .await;
    assert!(body.contains(">valid</text>"), "{body}");

    // Time moves past expiry: the same request now says expired.
    clock.set(ts("2027-01-14T17:00:00Z"));
    let (_, _, body) = get(&app, "/trust/caukee/badge.svg?lang=en", &certified).await;
    assert!(body.contains(">expired</text>"), "{body}");
}

#[tokio::test]
async fn unknown_sites_and_sites_without_a_record_are_404() {
    let app = app(clock());
    for uri in [
        "/trust/nowhere/badge.svg",
        "/trust/plain/badge.svg",
        "/trust/nowhere",
        "/trust/plain",
        "/trust/plain.json",
    ] {
        let (status, _, _) = get(&app, uri, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
    }
    let (status, _, _) = get(&app, "/trust/Bad%20Id/badge.svg", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn credential_verifies_against_the_published_keys() {
    let app = app(clock());
    let (status, headers, body) = get(&app, "/trust/caukee.json", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    let credential: Credential = serde_json::from_str(&body).unwrap();
    let (status, _, keys) = get(&app, "/.well-known/footfall-trust-keys", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let keys = KeysDocument::from_json(&keys).unwrap();
    let verified = credential::verify(&credential, &keys).unwrap();
    // The record as configured, signed by the service's key.
    assert_eq!(verified.payload, payload());
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    // Unchanged content, unchanged bytes: a 304 for the ETag.
    let etag = headers[header::ETAG].to_str().unwrap().to_owned();
    let (status, _, _) = get(
        &app,
        "/trust/caukee.json",
        &[(header::IF_NONE_MATCH, &etag)],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);

    // The page shows that credential's fingerprint, the visitor's host, and its CSP
    // allows only the page's stylesheet hash.
    let (status, headers, page) = get(
        &app,
        "/trust/caukee?lang=en",
        &[(header::REFERER, "https://caukee-travinh.example/x")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(&verified.fingerprint));
    assert!(page.contains("<code>caukee-travinh.example</code> — NOT in this record"));
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'none'; style-src 'sha256-"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe"), "{csp}");
    assert!(!csp.contains("script-src"), "{csp}");
    let (_, _, page) = get(&app, "/trust/caukee", &[]).await;
    assert!(page.contains("<html lang=\"vi\">"));
    assert!(page.contains("không rõ (trình duyệt không gửi Referer)"));
}

#[test]
fn page_csp_hash_matches_the_stylesheet() {
    // The snapshot's value was computed independently (Python hashlib over the constant
    // as written in render.rs) when it was reviewed.
    use base64::Engine;
    use sha2::Digest;
    let hash = base64::engine::general_purpose::STANDARD
        .encode(sha2::Sha256::digest(render::PAGE_STYLE.as_bytes()));
    expect_file!["snapshots/page-style.sha256"].assert_eq(&hash);
}

/// The fingerprint the verification page shows.
async fn page_fingerprint(app: &axum::Router) -> String {
    let (status, _, page) = get(app, "/trust/caukee?lang=en", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let (_, rest) = page
        .split_once("<dt>SHA-256 fingerprint</dt><dd><code>")
        .expect("the page shows a fingerprint");
    rest[..64].to_owned()
}

/// `PUT /admin/v1/sites/caukee` with `trust` as its record.
async fn register_caukee(internal: &axum::Router, trust: &TrustSettings) {
    let body = serde_json::json!({
        "name": "Cầu Kè",
        "hostnames": ["caukee.travinh.gov.vn"],
        "trust": trust,
    });
    let request = Request::put("/admin/v1/sites/caukee")
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = internal.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    assert!(
        status.is_success(),
        "{status} {}",
        String::from_utf8_lossy(&bytes)
    );
}

#[tokio::test]
async fn fingerprint_is_stable_while_the_record_is_and_changes_with_it() {
    let clock = clock();
    let store = Arc::new(footfall::store::AnyStore::Memory(
        footfall::store::MemoryStore::new(),
    ));
    let (public, internal) = instance(Arc::clone(&clock), Arc::clone(&store));
    let first = page_fingerprint(&public).await;
    let (_, _, served) = get(&public, "/trust/caukee.json", &[]).await;
    assert_eq!(
        credential::fingerprint(&serde_json::from_str(&served).unwrap()).as_deref(),
        Some(first.as_str()),
        "the page shows the served credential's fingerprint"
    );

    // Two requests, minutes and days apart (the first format signed the minute).
    assert_eq!(page_fingerprint(&public).await, first);
    for later in ["2026-03-01T08:01:30Z", "2026-03-09T23:59:00Z"] {
        clock.set(ts(later));
        assert_eq!(page_fingerprint(&public).await, first, "at {later}");
        let (_, _, again) = get(&public, "/trust/caukee.json", &[]).await;
        assert_eq!(again, served, "at {later}");
    }

    // The same record registered again through the admin API.
    register_caukee(&internal, &settings()).await;
    assert_eq!(
        page_fingerprint(&public).await,
        first,
        "after re-registration"
    );

    // A restart: a new instance over the same store, with the same key file's key.
    drop((public, internal));
    let (public, internal) = instance(Arc::clone(&clock), Arc::clone(&store));
    assert_eq!(page_fingerprint(&public).await, first, "after a restart");

    // A change of content changes it, at once; the old content gives the old one back.
    let suspended = TrustSettings {
        status: "suspended".to_owned(),
        ..settings()
    };
    register_caukee(&internal, &suspended).await;
    let changed = page_fingerprint(&public).await;
    assert_ne!(changed, first, "a suspension must change the credential");
    let (_, _, body) = get(&public, "/trust/caukee.json", &[]).await;
    let verified = credential::verify(
        &serde_json::from_str(&body).unwrap(),
        &keyring().keys_document(),
    )
    .unwrap();
    assert_eq!(verified.payload.status, "suspended");
    register_caukee(&internal, &settings()).await;
    assert_eq!(page_fingerprint(&public).await, first);
}
