//! Registered sites: their settings as operators write them (TOML file, admin API) and
//! the validated form the service counts with.

use std::sync::Arc;

use arc_swap::ArcSwap;
use foldhash::HashMap;
use footfall::calendar::{Calendar, WeekDefinition};
use footfall::identity::{IpTruncation, SaltRotation};
use footfall::{CountingRules, Metric, SiteId, Window};
use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

pub use crate::setting::SettingError;
use crate::trust::record::{TrustRecord, TrustSettings};

/// The id of the site registered on a fresh install, so the demo page counts at once.
pub const DEMO_SITE: &str = "demo";

/// A site's settings, as written in the sites file and sent to the admin API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteSettings {
    /// The site id: `[a-z0-9][a-z0-9-]{0,62}`.
    pub id: String,
    /// A human name, shown on verification pages.
    #[serde(default)]
    pub name: String,
    /// Hostnames whose pages may count hits and show the widgets (`*.example.vn` allowed).
    pub hostnames: Vec<String>,
    /// IANA time zone of the site's days and weeks.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// `monday` … `sunday` (the first day of the week) or `rolling` (the last 7 days).
    #[serde(default = "default_week")]
    pub week: String,
    /// Minutes without a hit that end a visit (1–1440).
    #[serde(default = "default_visit_timeout")]
    pub visit_timeout_minutes: u32,
    /// Minutes that count as "online now" (1–30).
    #[serde(default = "default_online_window")]
    pub online_window_minutes: u32,
    /// Days of per-day history kept (1–3660).
    #[serde(default = "default_retention")]
    pub retention_days: u32,
    /// Salt rotation period in hours (1–24); absent: daily at local midnight.
    #[serde(default)]
    pub salt_rotation_hours: Option<u8>,
    /// Truncate client addresses (IPv4 /24, IPv6 /48) before hashing, for NAT-heavy
    /// networks where many people share an address prefix anyway.
    #[serde(default)]
    pub ip_truncation: bool,
    /// Do not count hits from browsers that send `DNT: 1` or `Sec-GPC: 1`.
    #[serde(default)]
    pub respect_do_not_track: bool,
    /// Serve the statistics page `/stats/{id}` to anyone on the public listener. Off by
    /// default: the page is then served only on the internal listener, to the site's
    /// tokens (and the operators'), and the public listener answers 404.
    #[serde(default)]
    pub stats_public: bool,
    /// What the footer box shows.
    #[serde(default)]
    pub footer: FooterSettings,
    /// The site's trust certification, shown by the trust badge and page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust: Option<TrustSettings>,
}

/// The footer box: which lines, in which order, with which metric and label.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FooterSettings {
    /// The box title in Vietnamese.
    #[serde(default = "default_title_vi")]
    pub title_vi: String,
    /// The box title in English.
    #[serde(default = "default_title_en")]
    pub title_en: String,
    /// `comma` (`7,289,126`, the portal's current style) or `dot` (`7.289.126`, CLDR vi).
    #[serde(default = "default_number_format")]
    pub number_format: String,
    /// The lines, in order.
    #[serde(default = "default_lines")]
    pub lines: Vec<FooterLine>,
}

/// One line of the footer box.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FooterLine {
    /// `online`, `today`, `week`, `month` or `total`.
    pub window: String,
    /// `visits`, `visitors` or `pageviews` (online has `visitors` only).
    pub metric: String,
    /// The Vietnamese label; the standard one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_vi: Option<String>,
    /// The English label; the standard one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_en: Option<String>,
}

fn default_time_zone() -> String {
    footfall::rules::DEFAULT_TIME_ZONE.to_owned()
}
fn default_week() -> String {
    "monday".to_owned()
}
fn default_visit_timeout() -> u32 {
    30
}
fn default_online_window() -> u32 {
    5
}
fn default_retention() -> u32 {
    400
}
fn default_title_vi() -> String {
    "Thống kê truy cập".to_owned()
}
fn default_title_en() -> String {
    "Visitor statistics".to_owned()
}
fn default_number_format() -> String {
    "comma".to_owned()
}
fn default_lines() -> Vec<FooterLine> {
    // The portal's box: online = visitors, today / week / total = visits.
    [
        ("online", "visitors"),
        ("today", "visits"),
        ("week", "visits"),
        ("total", "visits"),
    ]
    .into_iter()
    .map(|(window, metric)| FooterLine {
        window: window.to_owned(),
        metric: metric.to_owned(),
        label_vi: None,
        label_en: None,
    })
    .collect()
}

impl Default for FooterSettings {
    fn default() -> Self {
        FooterSettings {
            title_vi: default_title_vi(),
            title_en: default_title_en(),
            number_format: default_number_format(),
            lines: default_lines(),
        }
    }
}

impl SiteSettings {
    /// Settings with every default, for `id` on `hostnames`.
    pub fn new(id: &str, hostnames: &[&str]) -> Self {
        SiteSettings {
            id: id.to_owned(),
            name: String::new(),
            hostnames: hostnames.iter().map(|h| (*h).to_owned()).collect(),
            time_zone: default_time_zone(),
            week: default_week(),
            visit_timeout_minutes: default_visit_timeout(),
            online_window_minutes: default_online_window(),
            retention_days: default_retention(),
            salt_rotation_hours: None,
            ip_truncation: false,
            respect_do_not_track: false,
            stats_public: false,
            footer: FooterSettings::default(),
            trust: None,
        }
    }

    /// The demo site: counts pages served from this machine, and carries a demonstration
    /// trust record (certifying localhost) so the demo page shows a live trust badge.
    pub fn demo() -> Self {
        SiteSettings {
            name: "footfall demo".to_owned(),
            trust: Some(TrustSettings {
                issuer: "footfall demo issuer".to_owned(),
                certificate_id: "DEMO-0001".to_owned(),
                hostnames: vec!["localhost".to_owned(), "127.0.0.1".to_owned()],
                level: "demo".to_owned(),
                issued: "2026-01-01".to_owned(),
                expires: "2036-12-31".to_owned(),
                status: "valid".to_owned(),
                tinnhiemmang: None,
            }),
            ..SiteSettings::new(DEMO_SITE, &["localhost", "127.0.0.1", "[::1]"])
        }
    }
}

fn setting_error(setting: &str, message: impl Into<String>) -> SettingError {
    SettingError::new(setting, message)
}

/// The longest label or title accepted, in characters.
const MAX_LABEL_CHARS: usize = 80;
/// The most hostnames a site may list.
const MAX_HOSTNAMES: usize = 64;

/// A registered site, validated: everything the request path needs, precomputed.
#[derive(Clone, Debug)]
pub struct Site {
    /// The id.
    pub id: SiteId,
    /// The settings it was built from (as given, for the admin API and widgets).
    pub settings: SiteSettings,
    /// The counting rules derived from the settings.
    pub rules: CountingRules,
    /// Hostname patterns, lowercased: exact names, or `*.suffix` for any subdomain.
    pub hostnames: Vec<String>,
    /// The footer lines, parsed.
    pub lines: Vec<(Window, Metric)>,
}

impl Site {
    /// Validates settings. `path` prefixes setting names in errors (e.g. `sites[0]`).
    pub fn from_settings(settings: SiteSettings, path: &str) -> Result<Site, SettingError> {
        let at = |name: &str| {
            if path.is_empty() {
                name.to_owned()
            } else {
                format!("{path}.{name}")
            }
        };
        let id = SiteId::new(&settings.id).map_err(|e| setting_error(&at("id"), e.to_string()))?;
        if settings.hostnames.is_empty() {
            return Err(setting_error(
                &at("hostnames"),
                "list at least one hostname",
            ));
        }
        if settings.hostnames.len() > MAX_HOSTNAMES {
            return Err(setting_error(
                &at("hostnames"),
                format!("at most {MAX_HOSTNAMES} hostnames"),
            ));
        }
        let mut hostnames = Vec::with_capacity(settings.hostnames.len());
        for (index, hostname) in settings.hostnames.iter().enumerate() {
            let normalized = normalize_hostname_pattern(hostname).ok_or_else(|| {
                setting_error(
                    &at(&format!("hostnames[{index}]")),
                    format!("not a hostname: {hostname:?}"),
                )
            })?;
            hostnames.push(normalized);
        }
        let week = match settings.week.as_str() {
            "rolling" => WeekDefinition::Rolling7Days,
            day => WeekDefinition::StartsOn(parse_weekday(day).ok_or_else(|| {
                setting_error(&at("week"), "expected monday … sunday, or rolling")
            })?),
        };
        let calendar = Calendar::new(&settings.time_zone, week)
            .map_err(|e| setting_error(&at("time_zone"), e.to_string()))?;
        let rotation = match settings.salt_rotation_hours {
            None | Some(24) => SaltRotation::Daily,
            Some(hours @ 1..=23) => SaltRotation::Hours(
                std::num::NonZeroU8::new(hours).expect("the pattern excludes zero"),
            ),
            Some(_) => return Err(setting_error(&at("salt_rotation_hours"), "must be 1 to 24")),
        };
        let rules = CountingRules::new(calendar)
            .with_visit_timeout(SignedDuration::from_mins(i64::from(
                settings.visit_timeout_minutes,
            )))
            .map_err(|e| setting_error(&at("visit_timeout_minutes"), e.to_string()))?
            .with_online_window(SignedDuration::from_mins(i64::from(
                settings.online_window_minutes,
            )))
            .map_err(|e| setting_error(&at("online_window_minutes"), e.to_string()))?
            .with_retention_days(settings.retention_days)
            .map_err(|e| setting_error(&at("retention_days"), e.to_string()))?
            .with_salt_rotation(rotation)
            .with_ip_truncation(if settings.ip_truncation {
                IpTruncation::Networks
            } else {
                IpTruncation::None
            });
        let footer = &settings.footer;
        for (name, text) in [
            ("footer.title_vi", &footer.title_vi),
            ("footer.title_en", &footer.title_en),
        ] {
            check_label(&at(name), text)?;
        }
        if !matches!(footer.number_format.as_str(), "comma" | "dot") {
            return Err(setting_error(
                &at("footer.number_format"),
                "expected comma or dot",
            ));
        }
        if footer.lines.is_empty() || footer.lines.len() > 8 {
            return Err(setting_error(&at("footer.lines"), "list 1 to 8 lines"));
        }
        let mut lines = Vec::with_capacity(footer.lines.len());
        for (index, line) in footer.lines.iter().enumerate() {
            let here = at(&format!("footer.lines[{index}]"));
            let window = Window::from_name(&line.window).ok_or_else(|| {
                setting_error(
                    &format!("{here}.window"),
                    "expected online, today, week, month or total",
                )
            })?;
            let metric = Metric::from_name(&line.metric).ok_or_else(|| {
                setting_error(
                    &format!("{here}.metric"),
                    "expected visits, visitors or pageviews",
                )
            })?;
            if window == Window::Online && metric != Metric::Visitors {
                return Err(setting_error(
                    &format!("{here}.metric"),
                    "online counts visitors only",
                ));
            }
            for (name, label) in [("label_vi", &line.label_vi), ("label_en", &line.label_en)] {
                if let Some(label) = label {
                    check_label(&format!("{here}.{name}"), label)?;
                }
            }
            lines.push((window, metric));
        }
        check_label(&at("name"), &settings.name)?;
        if let Some(trust) = &settings.trust {
            TrustRecord::from_settings(trust, &settings.time_zone, &at("trust"))?;
        }
        Ok(Site {
            id,
            settings,
            rules,
            hostnames,
            lines,
        })
    }

    /// The site's trust record, if it has one: validated again from the stored settings
    /// (cheap, and `Site` keeps only settings), so a record served is always a checked one.
    pub fn trust_record(&self) -> Option<Result<TrustRecord, SettingError>> {
        let settings = self.settings.trust.as_ref()?;
        Some(TrustRecord::from_settings(
            settings,
            &self.settings.time_zone,
            "trust",
        ))
    }

    /// True when `host` (from an `Origin` or `Referer`) is one of the site's hostnames.
    /// Hostnames are compared without regard to case (patterns are kept lowercase).
    pub fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').as_bytes();
        self.hostnames
            .iter()
            .any(|pattern| match pattern.strip_prefix("*.") {
                Some(suffix) => {
                    let suffix = suffix.as_bytes();
                    host.len() > suffix.len() + 1
                        && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
                        && host[host.len() - suffix.len() - 1] == b'.'
                }
                None => pattern.as_bytes().eq_ignore_ascii_case(host),
            })
    }
}

fn check_label(setting: &str, text: &str) -> Result<(), SettingError> {
    if text.chars().count() > MAX_LABEL_CHARS {
        return Err(setting_error(
            setting,
            format!("at most {MAX_LABEL_CHARS} characters"),
        ));
    }
    if text.chars().any(crate::text::is_disallowed_char) {
        return Err(setting_error(
            setting,
            "control characters, line and paragraph separators and bidirectional marks, \
             embeddings, overrides and isolates are not allowed",
        ));
    }
    Ok(())
}

fn parse_weekday(name: &str) -> Option<jiff::civil::Weekday> {
    use jiff::civil::Weekday::*;
    Some(match name {
        "monday" => Monday,
        "tuesday" => Tuesday,
        "wednesday" => Wednesday,
        "thursday" => Thursday,
        "friday" => Friday,
        "saturday" => Saturday,
        "sunday" => Sunday,
        _ => return None,
    })
}

/// Lowercases and checks a hostname pattern: letters, digits, `-` and `.`, an optional
/// leading `*.`, or a bracketed IPv6 literal.
fn normalize_hostname_pattern(pattern: &str) -> Option<String> {
    let lower = pattern.trim_end_matches('.').to_ascii_lowercase();
    if lower.starts_with('[') && lower.ends_with(']') {
        return lower[1..lower.len() - 1]
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(|_| lower);
    }
    let name = lower.strip_prefix("*.").unwrap_or(&lower);
    crate::setting::is_dns_name(name).then_some(lower)
}

/// The registry of sites: read on every request without locking, replaced whole on
/// change.
#[derive(Debug, Default)]
pub struct Sites {
    current: ArcSwap<HashMap<SiteId, Arc<Site>>>,
}

impl Sites {
    /// A registry holding `sites`.
    pub fn new(sites: impl IntoIterator<Item = Site>) -> Self {
        let map = sites
            .into_iter()
            .map(|s| (s.id.clone(), Arc::new(s)))
            .collect();
        Sites {
            current: ArcSwap::from_pointee(map),
        }
    }

    /// The site with `id` (a [`SiteId`], or a string already validated as one).
    pub fn get<Q>(&self, id: &Q) -> Option<Arc<Site>>
    where
        SiteId: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.current.load().get(id).cloned()
    }

    /// The whole registry as it is now; later changes do not affect it.
    pub fn snapshot(&self) -> Arc<HashMap<SiteId, Arc<Site>>> {
        self.current.load_full()
    }

    /// Every site, sorted by id.
    pub fn all(&self) -> Vec<Arc<Site>> {
        let mut all: Vec<Arc<Site>> = self.current.load().values().cloned().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// How many sites are registered.
    pub fn len(&self) -> usize {
        self.current.load().len()
    }

    /// True when no site is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds or replaces a site.
    pub fn upsert(&self, site: Site) {
        let site = Arc::new(site);
        self.current.rcu(|map| {
            let mut map = HashMap::clone(map);
            map.insert(site.id.clone(), Arc::clone(&site));
            map
        });
    }

    /// Removes a site; true when it existed.
    pub fn remove(&self, id: &SiteId) -> bool {
        let mut existed = false;
        self.current.rcu(|map| {
            let mut map = HashMap::clone(map);
            existed = map.remove(id).is_some();
            map
        });
        existed
    }

    /// Replaces every site at once.
    pub fn replace_all(&self, sites: impl IntoIterator<Item = Site>) {
        let map = sites
            .into_iter()
            .map(|s| (s.id.clone(), Arc::new(s)))
            .collect();
        self.current.store(Arc::new(map));
    }
}

/// The sites file: `[[sites]]` tables of [`SiteSettings`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SitesFile {
    #[serde(default)]
    sites: Vec<SiteSettings>,
}

/// Parses and validates a sites file; errors name the file and the setting.
pub fn parse_sites_file(text: &str) -> Result<Vec<Site>, SettingError> {
    let file: SitesFile =
        toml::from_str(text).map_err(|e| setting_error("sites file", e.to_string()))?;
    let mut seen = std::collections::HashSet::new();
    let mut sites = Vec::with_capacity(file.sites.len());
    for (index, settings) in file.sites.into_iter().enumerate() {
        let site = Site::from_settings(settings, &format!("sites[{index}]"))?;
        if !seen.insert(site.id.clone()) {
            return Err(setting_error(
                &format!("sites[{index}].id"),
                format!("{} is listed twice", site.id),
            ));
        }
        sites.push(site);
    }
    Ok(sites)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_site_is_valid_and_counts_localhost() {
        let site = Site::from_settings(SiteSettings::demo(), "").unwrap();
        assert!(site.allows_host("localhost"));
        assert!(site.allows_host("LOCALHOST."));
        assert!(site.allows_host("127.0.0.1"));
        assert!(!site.allows_host("evil.example"));
        assert_eq!(site.lines.len(), 4);
        assert_eq!(site.lines[0], (Window::Online, Metric::Visitors));
    }

    #[test]
    fn wildcard_hostnames_match_subdomains_only() {
        let site = Site::from_settings(
            SiteSettings::new("tv", &["*.travinh.gov.vn", "travinh.gov.vn"]),
            "",
        )
        .unwrap();
        for (host, allowed) in [
            ("travinh.gov.vn", true),
            ("caukee.travinh.gov.vn", true),
            ("a.b.travinh.gov.vn", true),
            ("eviltravinh.gov.vn", false),
            ("travinh.gov.vn.evil.com", false),
            (".travinh.gov.vn", false),
        ] {
            assert_eq!(site.allows_host(host), allowed, "{host}");
        }
    }

    #[test]
    fn errors_name_the_setting() {
        type Change = Box<dyn Fn(&mut SiteSettings)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|s| s.id = "Bad Id".into()), "id"),
            (Box::new(|s| s.hostnames.clear()), "hostnames"),
            (
                Box::new(|s| s.hostnames = vec!["exa mple.vn".into()]),
                "hostnames[0]",
            ),
            (
                Box::new(|s| s.time_zone = "Mars/Olympus".into()),
                "time_zone",
            ),
            (Box::new(|s| s.week = "someday".into()), "week"),
            (
                Box::new(|s| s.online_window_minutes = 31),
                "online_window_minutes",
            ),
            (
                Box::new(|s| s.visit_timeout_minutes = 0),
                "visit_timeout_minutes",
            ),
            (Box::new(|s| s.retention_days = 0), "retention_days"),
            (
                Box::new(|s| s.salt_rotation_hours = Some(25)),
                "salt_rotation_hours",
            ),
            (
                Box::new(|s| s.footer.number_format = "space".into()),
                "footer.number_format",
            ),
            (
                Box::new(|s| s.footer.lines[0].metric = "visits".into()),
                "footer.lines[0].metric",
            ),
            (
                Box::new(|s| s.footer.lines[1].window = "year".into()),
                "footer.lines[1].window",
            ),
            (
                Box::new(|s| s.footer.title_vi = "a\u{202e}b".into()),
                "footer.title_vi",
            ),
            (
                Box::new(|s| s.footer.title_en = "a\u{200e}b".into()),
                "footer.title_en",
            ),
            (Box::new(|s| s.name = "Cầu Kè\u{200f}".into()), "name"),
            (Box::new(|s| s.name = "\u{061c}7,289,126".into()), "name"),
            (Box::new(|s| s.name = "a\u{2028}b".into()), "name"),
            (Box::new(|s| s.name = "x".repeat(81)), "name"),
        ];
        for (change, setting) in cases {
            let mut settings = SiteSettings::demo();
            change(&mut settings);
            let error = Site::from_settings(settings, "sites[3]").unwrap_err();
            assert_eq!(error.setting, format!("sites[3].{setting}"), "{error}");
        }
    }

    #[test]
    fn sites_file_parses_and_rejects_duplicates() {
        let text = r#"
            [[sites]]
            id = "caukee"
            name = "Cầu Kè"
            hostnames = ["caukee.travinh.gov.vn"]
            week = "rolling"
            footer.number_format = "dot"

            [[sites]]
            id = "tuyengiao"
            hostnames = ["tuyengiao.travinh.gov.vn"]
        "#;
        let sites = parse_sites_file(text).unwrap();
        assert_eq!(sites.len(), 2);
        assert_eq!(
            sites[0].rules.calendar().week_definition(),
            WeekDefinition::Rolling7Days
        );
        let duplicate = format!("{text}\n[[sites]]\nid = \"caukee\"\nhostnames = [\"x.vn\"]\n");
        assert_eq!(
            parse_sites_file(&duplicate).unwrap_err().setting,
            "sites[2].id"
        );
        let unknown = "[[sites]]\nid = \"a\"\nhostnames = [\"a.vn\"]\ncolour = \"red\"\n";
        assert!(
            parse_sites_file(unknown)
                .unwrap_err()
                .message
                .contains("colour")
        );
    }

    #[test]
    fn registry_upserts_and_removes() {
        let sites = Sites::new([Site::from_settings(SiteSettings::demo(), "").unwrap()]);
        let id = SiteId::new("demo").unwrap();
        assert!(sites.get(&id).is_some());
        sites.upsert(Site::from_settings(SiteSettings::new("b", &["b.vn"]), "").unwrap());
        assert_eq!(
            sites
                .all()
                .iter()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>(),
            ["b", "demo"]
        );
        assert!(sites.remove(&id));
        assert!(!sites.remove(&id));
        assert_eq!(sites.len(), 1);
    }
}
