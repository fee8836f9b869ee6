//! Telling robots from people by their User-Agent, and prefetches by their headers.
//!
//! A User-Agent is judged in this order:
//!
//! 1. Absent or blank: a robot of kind [`RobotKind::Empty`] (every browser sends one).
//! 2. The allow-list of human in-app and regional browsers (Zalo, Cốc Cốc, Facebook,
//!    Messenger, Instagram, TikTok, LINE, Viber, WeChat, Yandex Browser, Samsung Internet,
//!    UC Browser…, in `data/robots/humans.txt`) and the operator's human patterns: a match is
//!    a person, whatever else the User-Agent says. Each entry names the in-app *browser* form
//!    only, so the same companies' link-preview fetchers stay robots.
//! 3. The operator's robot patterns ([`RobotKind::Configured`]).
//! 4. The hand-kept supplement (`data/robots/supplement.txt`), then the public
//!    crawler-user-agents list (`data/robots/crawler-user-agents.json`, with the corrections
//!    in `data/robots/upstream-fixes.txt`); each entry carries a kind.
//! 5. Generic signs: "bot" as a word ending (`Googlebot/`, `AhrefsBot`, but not the phone
//!    brand `CUBOT` nor `Caboto`), words such as "crawler" or "spider" outside an Android
//!    phone's model name, a URL or e-mail address, a name inside the engine's comment
//!    (`(KHTML, like Gecko; compatible; …)`).
//! 6. A User-Agent that names no operating system, device or browser engine at all
//!    (`Java/1.8`, `fasthttp`): a tool.
//!
//! Anything else is a person. Robot list entries that start with a letter or digit match only
//! at the start of a word, so `Sonic/` does not match `ViewSonic`.
//!
//! Matching is compiled once, at startup, from data embedded in the binary. Every rule has
//! literal fragments that any match must contain; one case-insensitive Aho-Corasick automaton
//! over all fragments scans the User-Agent once, and only the rules whose fragment was found
//! are confirmed (an exact comparison, or the rule's own regular expression, which waits
//! until the scan is over and no cheaper rule has decided). The cost is one pass over the
//! User-Agent whatever the length of the lists, and a repeated User-Agent is answered from a
//! small bounded cache (see `benches/benches/robots.rs` and `data/robots/README.md`).

mod cache;
mod data;
mod kind;
mod matcher;
#[cfg(test)]
mod tests;

use http::HeaderMap;

use cache::VerdictCache;
pub use kind::{RobotKind, Verdict};
use matcher::{Matcher, MatcherBuilder, Role};

/// The version of the crawler-user-agents list compiled into this binary.
pub const ROBOT_LIST_VERSION: &str = data::UPSTREAM_VERSION;

/// Shortest operator pattern accepted: shorter ones match too many real browsers.
const MIN_PATTERN_LEN: usize = 3;

/// Decides whether a User-Agent is a robot, and of which kind.
///
/// Build it once at startup ([`BotFilter::default`] or [`BotFilter::with_patterns`]) and share
/// it: a verdict takes `&self`. Recent verdicts are remembered in a small bounded cache
/// (4,096 User-Agents of at most 512 bytes, in memory only), since real traffic repeats the
/// same few hundred User-Agents.
#[derive(Debug)]
pub struct BotFilter {
    /// Shared between the filters of a process when they add no patterns of their own:
    /// the built-in matcher takes some 0.3 MB and milliseconds to compile.
    matcher: std::sync::Arc<Matcher>,
    cache: VerdictCache,
}

/// The built-in lists' matcher, compiled on first use.
static BUILT_IN: std::sync::OnceLock<Result<std::sync::Arc<Matcher>, String>> =
    std::sync::OnceLock::new();

impl BotFilter {
    /// The built-in lists plus `extra_robots` from configuration: see
    /// [`BotFilter::with_patterns`].
    pub fn new(extra_robots: &[String]) -> Result<Self, String> {
        BotFilter::with_patterns(extra_robots, &[])
    }

    /// The built-in lists plus the operator's patterns.
    ///
    /// Both kinds of pattern are case-insensitive substrings of at least three characters.
    /// `extra_robots` mark robots of kind [`RobotKind::Configured`]; `extra_humans` join the
    /// allow-list of human browsers, which is checked first, so a human pattern wins over any
    /// robot rule: keep it specific to the browser (`MyCityApp/` rather than `MyCity`).
    pub fn with_patterns(extra_robots: &[String], extra_humans: &[String]) -> Result<Self, String> {
        if extra_robots.is_empty() && extra_humans.is_empty() {
            let matcher = BUILT_IN.get_or_init(|| {
                let mut builder = MatcherBuilder::default();
                data::add_built_in(&mut builder)?;
                builder.build().map(std::sync::Arc::new)
            });
            return Ok(BotFilter {
                matcher: std::sync::Arc::clone(matcher.as_ref().map_err(String::clone)?),
                cache: VerdictCache::new(),
            });
        }
        let mut builder = MatcherBuilder::default();
        for (patterns, role, what) in [
            (extra_humans, Role::Human, "human"),
            (extra_robots, Role::Robot(RobotKind::Configured), "bot"),
        ] {
            for pattern in patterns {
                let pattern = pattern.trim();
                if pattern.chars().count() < MIN_PATTERN_LEN {
                    return Err(format!(
                        "{what} pattern {pattern:?} is too short ({MIN_PATTERN_LEN} characters at least)"
                    ));
                }
                builder.add_substring(role, pattern);
            }
        }
        data::add_built_in(&mut builder)?;
        Ok(BotFilter {
            matcher: std::sync::Arc::new(builder.build()?),
            cache: VerdictCache::new(),
        })
    }

    /// The verdict on a request's User-Agent header (`None` when it had none).
    pub fn verdict(&self, user_agent: Option<&str>) -> Verdict {
        match user_agent {
            Some(ua) if !ua.trim().is_empty() => {
                self.cache.get_or_judge(ua, |ua| self.matcher.judge(ua))
            }
            _ => self.verdict_uncached(user_agent),
        }
    }

    /// The verdict without the cache: what a User-Agent seen for the first time costs.
    pub fn verdict_uncached(&self, user_agent: Option<&str>) -> Verdict {
        match user_agent {
            None => Verdict::Robot(RobotKind::Empty),
            Some(ua) if ua.trim().is_empty() => Verdict::Robot(RobotKind::Empty),
            Some(ua) => self.matcher.judge(ua),
        }
    }

    /// True for robots, and for an empty or absent User-Agent (browsers always send one).
    pub fn is_bot(&self, user_agent: Option<&str>) -> bool {
        self.verdict(user_agent).is_robot()
    }
}

impl Default for BotFilter {
    fn default() -> Self {
        BotFilter::new(&[]).expect("the built-in robot and human lists compile")
    }
}

/// True when the request is a prefetch or prerender, which is not a page view (yet).
pub fn is_prefetch(headers: &HeaderMap) -> bool {
    // One pass over the request's headers, comparing names with constants: these
    // headers are almost always absent, and looking each of four names up hashes it
    // (this runs on every hit).
    static SEC_PURPOSE: http::HeaderName = http::HeaderName::from_static("sec-purpose");
    static PURPOSE: http::HeaderName = http::HeaderName::from_static("purpose");
    static X_PURPOSE: http::HeaderName = http::HeaderName::from_static("x-purpose");
    static X_MOZ: http::HeaderName = http::HeaderName::from_static("x-moz");
    headers.iter().any(|(name, value)| {
        let words: &[&[u8]] = if *name == SEC_PURPOSE {
            &[b"prefetch", b"prerender"]
        } else if *name == PURPOSE || *name == X_PURPOSE {
            &[b"prefetch", b"preview"]
        } else if *name == X_MOZ {
            &[b"prefetch"]
        } else {
            return false;
        };
        let value = value.as_bytes();
        words.iter().any(|word| {
            value
                .windows(word.len())
                .any(|window| window.eq_ignore_ascii_case(word))
        })
    })
}
