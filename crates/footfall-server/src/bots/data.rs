//! The built-in lists, embedded from `data/robots/`, and the rules written in code.
//!
//! `data/robots/README.md` says where each file comes from and how to refresh the public
//! list; this module only reads them. Rules are added in priority order (the first robot
//! rule that matches decides the kind): supplement, public list, generic words, URL rule.

use std::collections::HashMap;

use serde::Deserialize;

use super::kind::RobotKind;
use super::matcher::{MatcherBuilder, Role};

/// crawler-user-agents' `crawler-user-agents.json`, as published (MIT licence, see
/// `data/robots/LICENSE-crawler-user-agents`).
pub(super) const UPSTREAM_JSON: &str = include_str!("../../data/robots/crawler-user-agents.json");

/// The version of [`UPSTREAM_JSON`], written by `scripts/refresh-robots.sh`.
pub(super) const UPSTREAM_VERSION: &str =
    include_str!("../../data/robots/crawler-user-agents.version").trim_ascii();

/// Corrections to the public list.
pub(super) const UPSTREAM_FIXES: &str = include_str!("../../data/robots/upstream-fixes.txt");

/// Robots the public list misses, kept by hand.
pub(super) const SUPPLEMENT: &str = include_str!("../../data/robots/supplement.txt");

/// Human in-app and regional browsers.
pub(super) const HUMANS: &str = include_str!("../../data/robots/humans.txt");

/// The kind of a public-list entry from its `tags`, in priority order: an entry with several
/// tags takes the first of them listed here (`meta-externalagent` is tagged both
/// `ai-crawler` and `social-preview`, and is an AI crawler).
const TAG_KINDS: &[(&str, RobotKind)] = &[
    ("ai-crawler", RobotKind::Ai),
    ("search-engine", RobotKind::Search),
    ("social-preview", RobotKind::Social),
    ("monitoring", RobotKind::Monitor),
    ("scanner", RobotKind::Scanner),
    ("archiver", RobotKind::Archiver),
    ("http-library", RobotKind::Tool),
    ("browser-automation", RobotKind::Tool),
    ("feed-reader", RobotKind::Feed),
    ("seo", RobotKind::Seo),
    ("advertising", RobotKind::Other),
    ("academic", RobotKind::Other),
];

/// The kind of an entry that has no tag from [`TAG_KINDS`] (the list had no tags before
/// 2025, and may grow new ones): the first keyword found in its pattern, URL or description,
/// lowercased; [`RobotKind::Other`] when none is.
const KEYWORD_KINDS: &[(&str, RobotKind)] = &[
    ("gpt", RobotKind::Ai),
    ("claude", RobotKind::Ai),
    ("anthropic", RobotKind::Ai),
    ("perplexity", RobotKind::Ai),
    ("openai", RobotKind::Ai),
    (" ai ", RobotKind::Ai),
    ("search", RobotKind::Search),
    ("google", RobotKind::Search),
    ("bing", RobotKind::Search),
    ("yandex", RobotKind::Search),
    ("baidu", RobotKind::Search),
    ("preview", RobotKind::Social),
    ("facebook", RobotKind::Social),
    ("monitor", RobotKind::Monitor),
    ("uptime", RobotKind::Monitor),
    ("scan", RobotKind::Scanner),
    ("security", RobotKind::Scanner),
    ("archiv", RobotKind::Archiver),
    ("feed", RobotKind::Feed),
    ("rss", RobotKind::Feed),
    ("podcast", RobotKind::Feed),
    ("seo", RobotKind::Seo),
    ("backlink", RobotKind::Seo),
    ("library", RobotKind::Tool),
    ("client", RobotKind::Tool),
    ("headless", RobotKind::Tool),
];

/// Words that only robots put in a User-Agent, outside a phone's model name, and the kind
/// each suggests. Checked after both lists, so a listed robot keeps its listed kind.
const GENERIC_WORDS: &[(&str, RobotKind)] = &[
    ("crawl", RobotKind::Other),
    ("spider", RobotKind::Other),
    ("spyder", RobotKind::Other),
    ("robot", RobotKind::Other),
    ("fetcher", RobotKind::Other),
    ("analyzer", RobotKind::Other),
    ("analyser", RobotKind::Other),
    ("scrap", RobotKind::Tool),
    ("grabber", RobotKind::Tool),
    ("harvest", RobotKind::Tool),
    ("extractor", RobotKind::Tool),
    ("parser", RobotKind::Tool),
    ("downloader", RobotKind::Tool),
    ("httpclient", RobotKind::Tool),
    ("http client", RobotKind::Tool),
    ("http-client", RobotKind::Tool),
    ("http_client", RobotKind::Tool),
    ("headless", RobotKind::Tool),
    ("screenshot", RobotKind::Tool),
    ("thumbnail", RobotKind::Tool),
    ("preview", RobotKind::Social),
    ("checker", RobotKind::Monitor),
    ("validator", RobotKind::Monitor),
    ("monitor", RobotKind::Monitor),
    ("uptime", RobotKind::Monitor),
    ("scanner", RobotKind::Scanner),
    ("archiver", RobotKind::Archiver),
];

/// A URL or e-mail address: browsers never put one in their User-Agent, robots do so that
/// webmasters can find out who they are (`+http://…/bot.html`, `crawler@example.com`).
/// The domain label needs a letter so that version numbers (`1.7.1.ai`) do not count, and a
/// colon may not follow the domain: corporate Internet Explorer builds carry tokens such as
/// `swrinfo: 3129:dac.mod.uk:16-04191`.
const URL_RULE: &str = r"(?i:https?://|\+https?\b|www\.[a-z0-9-]+\.)|[a-z0-9-]*[a-z][a-z0-9-]*\.(?:com|net|org|de|ru|info|io|fr|uk|jp|cn|nl|cz|pl|br|it|es|eu|ch|at|be|se|no|dk|fi|co|me|ai|app|dev)(?:[/) ;,]|$)|[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\.[A-Za-z]{2,}|\bat\b \S+ \bdot\b";

/// Fragments through which [`URL_RULE`] is reached (the automaton's keys).
const URL_KEYS: &[&str] = &[
    "http:", "https:", "+http", "www.", "@", " dot ", ".com", ".net", ".org", ".de", ".ru",
    ".info", ".io", ".fr", ".uk", ".jp", ".cn", ".nl", ".cz", ".pl", ".br", ".it", ".es", ".eu",
    ".ch", ".at", ".be", ".se", ".no", ".dk", ".fi", ".co", ".me", ".ai", ".app", ".dev",
];

/// A name inside the engine's comment: browsers close `(KHTML, like Gecko)` right away,
/// robots running Chrome add their own name there after a semicolon (`(KHTML, like Gecko;
/// compatible; GPTBot/1.0; …)`, `(KHTML, like Gecko; GoogleAdSenseInfeed)`), and Google's
/// older fetchers after a comma (`(KHTML, like Gecko, Google-Publisher-Plugin)`). A comma
/// alone is not enough: the PlayStation 4 writes `(KHTML, like Gecko, HEVC, HDR, UHD)`.
const LIKE_GECKO_RULE: &str = r"like Gecko(?:; ?[A-Za-z]|, ?Google)";

/// Fragments through which [`LIKE_GECKO_RULE`] is reached: not `like Gecko`, which every
/// browser writes (the automaton keeps only a key's first eight bytes).
const LIKE_GECKO_KEYS: &[&str] = &["gecko;", "gecko, google", "gecko,google"];

/// Tokens that name an operating system, device or browser engine (any case). Every browser
/// writes at least one; a User-Agent with none is an HTTP library or a script. `Mozilla` is
/// not one of them: robots put it in front of their own name (`Mozilla/5.0 (compatible;
/// Dormouse/1.0)`, `Mozilla/5.0 zgrab/0.x`), while Firefox OS, the one browser that names no
/// system, says `(Mobile; …) Gecko/…`. Over-broad tokens only make the rule miss a robot,
/// never drop a person.
const PLATFORM_TOKENS: &[&str] = &[
    "gecko",
    "applewebkit",
    "khtml",
    "presto",
    "trident",
    "netfront",
    "msie",
    "firefox",
    "chrome",
    "safari",
    "konqueror",
    "netscape",
    "mobile",
    "tablet",
    "opera",
    "windows",
    "win32",
    "win64",
    "win98",
    "win95",
    "winnt",
    "macintosh",
    "mac os",
    "mac_powerpc",
    "darwin",
    "linux",
    "android",
    "iphone",
    "ipad",
    "ipod",
    "ios",
    "cros",
    "x11",
    "bsd",
    "sunos",
    "blackberry",
    "bb10",
    "symbian",
    "series40",
    "series60",
    "series 40",
    "series 60",
    "nokia",
    "midp",
    "samsung",
    "sonyericsson",
    "maui",
    "kaios",
    "tizen",
    "webos",
    "web0s",
    "playstation",
    "nintendo",
    "xbox",
    "smart-tv",
    "smarttv",
    "ucweb",
    "up.browser",
    "profile/",
    "docomo",
    "j2me",
    "palmos",
    "bada",
    "brew",
    "amiga",
    "beos",
    "risc os",
    "inferno",
    "webtv",
    "aol",
    "willcom",
    "sanyo",
    "hiptop",
    "jig browser",
];

#[derive(Deserialize)]
struct UpstreamEntry {
    pattern: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    url: String,
    #[serde(default)]
    description: String,
}

/// What to do with one public-list pattern.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Fix<'a> {
    Drop,
    Replace(&'a str),
}

/// Adds every built-in rule, in priority order.
pub(super) fn add_built_in(builder: &mut MatcherBuilder) -> Result<(), String> {
    for pattern in entries(HUMANS) {
        builder.add_pattern(Role::Human, pattern)?;
    }
    for line in entries(SUPPLEMENT) {
        let (label, pattern) = line
            .split_once(char::is_whitespace)
            .ok_or_else(|| format!("supplement line {line:?} has no pattern"))?;
        let kind = RobotKind::from_label(label)
            .ok_or_else(|| format!("supplement line {line:?}: unknown kind {label:?}"))?;
        builder.add_pattern(Role::Robot(kind), pattern.trim())?;
    }
    let fixes = parse_fixes(UPSTREAM_FIXES)?;
    for entry in upstream()? {
        let pattern = match fixes.get(entry.pattern.as_str()) {
            Some(Fix::Drop) => continue,
            Some(Fix::Replace(narrower)) => narrower,
            None => entry.pattern.as_str(),
        };
        builder.add_pattern(Role::Robot(kind_of(&entry)), pattern)?;
    }
    builder.add_bot_word(RobotKind::Other);
    for &(word, kind) in GENERIC_WORDS {
        builder.add_word(kind, word);
    }
    builder.add_generic_regex(RobotKind::Other, URL_KEYS, URL_RULE)?;
    builder.add_generic_regex(RobotKind::Other, LIKE_GECKO_KEYS, LIKE_GECKO_RULE)?;
    for token in PLATFORM_TOKENS {
        builder.add_platform(token);
    }
    Ok(())
}

fn upstream() -> Result<Vec<UpstreamEntry>, String> {
    serde_json::from_str(UPSTREAM_JSON).map_err(|e| format!("crawler-user-agents.json: {e}"))
}

/// The kind of a public-list entry: by [`TAG_KINDS`], else by [`KEYWORD_KINDS`].
fn kind_of(entry: &UpstreamEntry) -> RobotKind {
    for &(tag, kind) in TAG_KINDS {
        if entry.tags.iter().any(|t| t == tag) {
            return kind;
        }
    }
    kind_by_keywords(&entry.pattern, &entry.url, &entry.description)
}

fn kind_by_keywords(pattern: &str, url: &str, description: &str) -> RobotKind {
    let text = format!(" {pattern} {url} {description} ").to_ascii_lowercase();
    KEYWORD_KINDS
        .iter()
        .find(|(keyword, _)| text.contains(keyword))
        .map_or(RobotKind::Other, |&(_, kind)| kind)
}

/// The non-comment, non-blank lines of a data file, trimmed.
fn entries(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
}

pub(super) fn parse_fixes(text: &str) -> Result<HashMap<&str, Fix<'_>>, String> {
    let mut fixes = HashMap::new();
    for line in entries(text) {
        let (pattern, fix) = if let Some(pattern) = line.strip_prefix("drop ") {
            (pattern.trim(), Fix::Drop)
        } else if let Some(rest) = line.strip_prefix("replace ") {
            let (pattern, narrower) = rest
                .split_once(" => ")
                .ok_or_else(|| format!("upstream fix {line:?} lacks ` => `"))?;
            (pattern.trim(), Fix::Replace(narrower.trim()))
        } else {
            return Err(format!("upstream fix {line:?} is neither drop nor replace"));
        };
        fixes.insert(pattern, fix);
    }
    Ok(fixes)
}

/// Facts about the embedded data, for tests.
#[cfg(test)]
pub(super) mod facts {
    use super::*;

    /// Fixes whose pattern is no longer in the public list.
    pub(in crate::bots) fn stale_fixes() -> Vec<String> {
        let entries = upstream().expect("the list parses");
        let fixes = parse_fixes(UPSTREAM_FIXES).expect("the fixes parse");
        fixes
            .keys()
            .filter(|pattern| !entries.iter().any(|e| e.pattern == **pattern))
            .map(|pattern| (*pattern).to_owned())
            .collect()
    }

    /// Public-list entries whose kind came from keywords rather than tags.
    pub(in crate::bots) fn untagged_patterns() -> Vec<String> {
        upstream()
            .expect("the list parses")
            .into_iter()
            .filter(|e| {
                !TAG_KINDS
                    .iter()
                    .any(|(tag, _)| e.tags.iter().any(|t| t == tag))
            })
            .map(|e| e.pattern)
            .collect()
    }

    pub(in crate::bots) fn keyword_kind(pattern: &str, url: &str, description: &str) -> RobotKind {
        kind_by_keywords(pattern, url, description)
    }

    pub(in crate::bots) fn entry_count() -> usize {
        upstream().expect("the list parses").len()
    }
}
