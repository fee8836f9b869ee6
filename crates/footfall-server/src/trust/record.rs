//! A site's trust record: the `trust` table operators write ([`TrustSettings`]), its
//! validated form ([`TrustRecord`]) and its live status at an instant
//! ([`TrustRecord::status_at`]), a pure function of the record and the clock.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::setting::{SettingError, normalize_hostname};
use crate::text::is_disallowed_char;

/// The `trust` table of a site's settings, as operators write it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustSettings {
    /// The certifying organisation, as shown on the badge.
    pub issuer: String,
    /// The certificate's number or id, as printed by the issuer.
    pub certificate_id: String,
    /// The exact hostnames the certificate covers (no wildcards: a certificate names
    /// domains, and a wildcard would certify pages the issuer never saw).
    pub hostnames: Vec<String>,
    /// The certification level (free text, e.g. "Cấp độ 2").
    #[serde(default)]
    pub level: String,
    /// When the certificate starts: RFC 3339 (`2025-01-15T00:00:00+07:00`) or a date
    /// (`2025-01-15`, the start of that day in the site's time zone).
    pub issued: String,
    /// When it ends: RFC 3339, or a date (valid through the end of that day in the
    /// site's time zone).
    pub expires: String,
    /// `valid`, `suspended` or `revoked`, as set by the issuer.
    #[serde(default = "default_status")]
    pub status: String,
    /// The official tinnhiemmang.vn seal of the site, rendered as the issuer's own snippet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tinnhiemmang: Option<TinnhiemmangSettings>,
}

/// The tinnhiemmang.vn embed: the certified domain (the key of its image URL) and the
/// slug of its page in the trust directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TinnhiemmangSettings {
    /// The certified domain, e.g. `tuyengiao.travinh.gov.vn`.
    pub domain: String,
    /// The directory slug, `[a-z0-9-]+`.
    pub slug: String,
}

fn default_status() -> String {
    "valid".to_owned()
}

/// The status the issuer set; the live status also depends on the dates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SetStatus {
    /// In force, subject to its dates.
    Valid,
    /// Temporarily withdrawn.
    Suspended,
    /// Withdrawn for good.
    Revoked,
}

impl SetStatus {
    /// The wire name, as in settings and credentials.
    pub fn name(self) -> &'static str {
        match self {
            SetStatus::Valid => "valid",
            SetStatus::Suspended => "suspended",
            SetStatus::Revoked => "revoked",
        }
    }

    /// Parses a wire name.
    pub fn from_name(name: &str) -> Option<SetStatus> {
        Some(match name {
            "valid" => SetStatus::Valid,
            "suspended" => SetStatus::Suspended,
            "revoked" => SetStatus::Revoked,
            _ => return None,
        })
    }
}

/// The status of a record at an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LiveStatus {
    /// Set valid, and the instant lies in `[issued, expires)`.
    Valid,
    /// Set valid, but the instant is before `issued`.
    NotYetValid,
    /// Set valid, but the instant is at or after `expires`.
    Expired,
    /// Suspended by the issuer, whatever the dates.
    Suspended,
    /// Revoked by the issuer, whatever the dates.
    Revoked,
}

impl LiveStatus {
    /// The wire name, as in credentials.
    pub fn name(self) -> &'static str {
        match self {
            LiveStatus::Valid => "valid",
            LiveStatus::NotYetValid => "not_yet_valid",
            LiveStatus::Expired => "expired",
            LiveStatus::Suspended => "suspended",
            LiveStatus::Revoked => "revoked",
        }
    }

    /// Parses a wire name.
    pub fn from_name(name: &str) -> Option<LiveStatus> {
        Some(match name {
            "valid" => LiveStatus::Valid,
            "not_yet_valid" => LiveStatus::NotYetValid,
            "expired" => LiveStatus::Expired,
            "suspended" => LiveStatus::Suspended,
            "revoked" => LiveStatus::Revoked,
            _ => return None,
        })
    }
}

/// A validated trust record of one site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustRecord {
    /// The issuer's name.
    pub issuer: String,
    /// The certificate id.
    pub certificate_id: String,
    /// Certified hostnames, lowercased, without a trailing dot.
    pub hostnames: Vec<String>,
    /// The level (may be empty).
    pub level: String,
    /// Start of validity.
    pub issued: Timestamp,
    /// End of validity (exclusive).
    pub expires: Timestamp,
    /// The status the issuer set.
    pub status: SetStatus,
    /// The official tinnhiemmang.vn seal, validated.
    pub tinnhiemmang: Option<TinnhiemmangSettings>,
}

/// The longest issuer, certificate id or level accepted, in characters.
const MAX_TEXT_CHARS: usize = 120;
/// The most certified hostnames per record.
const MAX_CERTIFIED_HOSTNAMES: usize = 16;

fn setting_error(setting: String, message: impl Into<String>) -> SettingError {
    SettingError::new(setting, message)
}

impl TrustRecord {
    /// Validates `settings`; `time_zone` (the site's, already valid) places plain dates;
    /// `path` names the table in errors (e.g. `sites[0].trust`).
    pub fn from_settings(
        settings: &TrustSettings,
        time_zone: &str,
        path: &str,
    ) -> Result<TrustRecord, SettingError> {
        let at = |name: &str| format!("{path}.{name}");
        let zone =
            TimeZone::get(time_zone).map_err(|e| setting_error(at("time_zone"), e.to_string()))?;
        for (name, text, required) in [
            ("issuer", &settings.issuer, true),
            ("certificate_id", &settings.certificate_id, true),
            ("level", &settings.level, false),
        ] {
            check_text(at(name), text, required)?;
        }
        if settings.hostnames.is_empty() || settings.hostnames.len() > MAX_CERTIFIED_HOSTNAMES {
            return Err(setting_error(
                at("hostnames"),
                format!("list 1 to {MAX_CERTIFIED_HOSTNAMES} certified hostnames"),
            ));
        }
        let mut hostnames = Vec::with_capacity(settings.hostnames.len());
        for (index, hostname) in settings.hostnames.iter().enumerate() {
            let normalized = normalize_hostname(hostname).ok_or_else(|| {
                setting_error(
                    at(&format!("hostnames[{index}]")),
                    format!("not an exact hostname: {hostname:?}"),
                )
            })?;
            hostnames.push(normalized);
        }
        let issued = parse_instant(&settings.issued, &zone, Edge::Start)
            .ok_or_else(|| setting_error(at("issued"), "expected RFC 3339 or YYYY-MM-DD"))?;
        let expires = parse_instant(&settings.expires, &zone, Edge::EndOfDay)
            .ok_or_else(|| setting_error(at("expires"), "expected RFC 3339 or YYYY-MM-DD"))?;
        if expires <= issued {
            return Err(setting_error(at("expires"), "must be after issued"));
        }
        let status = SetStatus::from_name(&settings.status)
            .ok_or_else(|| setting_error(at("status"), "expected valid, suspended or revoked"))?;
        if let Some(seal) = &settings.tinnhiemmang {
            if normalize_hostname(&seal.domain).as_deref() != Some(seal.domain.as_str()) {
                return Err(setting_error(
                    at("tinnhiemmang.domain"),
                    "expected a lowercase hostname",
                ));
            }
            if !valid_slug(&seal.slug) {
                return Err(setting_error(
                    at("tinnhiemmang.slug"),
                    "expected [a-z0-9-], 1 to 200 characters",
                ));
            }
        }
        Ok(TrustRecord {
            issuer: settings.issuer.clone(),
            certificate_id: settings.certificate_id.clone(),
            hostnames,
            level: settings.level.clone(),
            issued,
            expires,
            status,
            tinnhiemmang: settings.tinnhiemmang.clone(),
        })
    }

    /// The live status at `now`: the issuer's suspension or revocation wins; otherwise
    /// the dates decide, validity being the half-open interval `[issued, expires)`.
    pub fn status_at(&self, now: Timestamp) -> LiveStatus {
        live_status(self.status, self.issued, self.expires, now)
    }

    /// True when `host` (from a `Referer` or `Origin`) is one of the certified hostnames.
    pub fn certifies_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hostnames.contains(&host)
    }
}

/// The live status at `now` of a certificate the issuer set to `status`, valid in
/// `[issued, expires)`: a suspension or revocation wins over the dates.
pub fn live_status(
    status: SetStatus,
    issued: Timestamp,
    expires: Timestamp,
    now: Timestamp,
) -> LiveStatus {
    match status {
        SetStatus::Revoked => LiveStatus::Revoked,
        SetStatus::Suspended => LiveStatus::Suspended,
        SetStatus::Valid if now < issued => LiveStatus::NotYetValid,
        SetStatus::Valid if now >= expires => LiveStatus::Expired,
        SetStatus::Valid => LiveStatus::Valid,
    }
}

#[derive(Clone, Copy)]
enum Edge {
    Start,
    EndOfDay,
}

fn parse_instant(text: &str, zone: &TimeZone, edge: Edge) -> Option<Timestamp> {
    if let Ok(instant) = text.parse::<Timestamp>() {
        return Some(instant);
    }
    let date: jiff::civil::Date = text.parse().ok()?;
    let day = match edge {
        Edge::Start => date,
        // "Expires 2027-01-31" means the whole of that day is still covered.
        Edge::EndOfDay => date.tomorrow().ok()?,
    };
    Some(day.to_zoned_datetime(zone.clone()).ok()?.timestamp())
}

/// Checks a configured text: length, and no control or bidirectional-formatting
/// characters, which could make a badge or page read differently from its data.
fn check_text(setting: String, text: &str, required: bool) -> Result<(), SettingError> {
    if required && text.trim().is_empty() {
        return Err(setting_error(setting, "must not be empty"));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(setting_error(
            setting,
            format!("at most {MAX_TEXT_CHARS} characters"),
        ));
    }
    if text.chars().any(is_disallowed_char) {
        return Err(setting_error(
            setting,
            "control, line-separator and bidirectional-formatting characters are not allowed",
        ));
    }
    Ok(())
}

/// True for a tinnhiemmang.vn directory slug: `[a-z0-9-]`, 1 to 200 characters.
pub(crate) fn valid_slug(slug: &str) -> bool {
    (1..=200).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}
