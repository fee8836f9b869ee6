//! Telling robots from people by their User-Agent, and prefetches by their headers.
//!
//! Matching is a case-insensitive substring search over one automaton of patterns, so its
//! cost does not grow with the list (about one pass over the User-Agent).

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use http::HeaderMap;

/// Substrings that mark crawlers, monitors, HTTP libraries and headless browsers.
const BUILT_IN_PATTERNS: &[&str] = &[
    "bot",
    "crawl",
    "spider",
    "slurp",
    "scrap",
    "archiver",
    "fetch",
    "monitor",
    "checker",
    "preview",
    "lighthouse",
    "pagespeed",
    "pingdom",
    "uptime",
    "headlesschrome",
    "phantomjs",
    "selenium",
    "puppeteer",
    "playwright",
    "curl/",
    "wget/",
    "python-requests",
    "python-urllib",
    "aiohttp",
    "httpx",
    "go-http-client",
    "java/",
    "okhttp",
    "apache-httpclient",
    "libwww-perl",
    "node-fetch",
    "axios/",
    "facebookexternalhit",
    "whatsapp",
    "zalo",
    "github-camo",
    "feedfetcher",
    "mediapartners",
    "google-read-aloud",
    "ia_archiver",
    "yandex",
    "baiduspider",
    "coccoc",
];

/// Decides whether a User-Agent is a robot.
#[derive(Debug)]
pub struct BotFilter {
    patterns: AhoCorasick,
}

impl BotFilter {
    /// The built-in patterns plus `extra` (from configuration).
    pub fn new(extra: &[String]) -> Result<Self, String> {
        let mut patterns: Vec<String> = BUILT_IN_PATTERNS.iter().map(|p| (*p).to_owned()).collect();
        for pattern in extra {
            let pattern = pattern.trim().to_ascii_lowercase();
            if pattern.len() < 3 {
                return Err(format!(
                    "bot pattern {pattern:?} is too short (3 characters at least)"
                ));
            }
            patterns.push(pattern);
        }
        let patterns = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostFirst)
            .build(&patterns)
            .map_err(|e| e.to_string())?;
        Ok(BotFilter { patterns })
    }

    /// True for robots, and for an empty or absent User-Agent (browsers always send one).
    pub fn is_bot(&self, user_agent: Option<&str>) -> bool {
        match user_agent {
            None => true,
            Some(ua) if ua.trim().is_empty() => true,
            Some(ua) => self.patterns.is_match(ua),
        }
    }
}

impl Default for BotFilter {
    fn default() -> Self {
        BotFilter::new(&[]).expect("the built-in patterns are valid")
    }
}

/// True when the request is a prefetch or prerender, which is not a page view (yet).
pub fn is_prefetch(headers: &HeaderMap) -> bool {
    let says = |name: &str, words: &[&str]| {
        headers.get_all(name).iter().any(|value| {
            value
                .to_str()
                .map(|v| {
                    let v = v.to_ascii_lowercase();
                    words.iter().any(|w| v.contains(w))
                })
                .unwrap_or(false)
        })
    };
    says("sec-purpose", &["prefetch", "prerender"])
        || says("purpose", &["prefetch", "preview"])
        || says("x-purpose", &["prefetch", "preview"])
        || says("x-moz", &["prefetch"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn robots_and_people() {
        let filter = BotFilter::new(&["MyMonitor".to_owned()]).unwrap();
        let cases = [
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
                false,
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
                false,
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
                false,
            ),
            (
                "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                true,
            ),
            (
                "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
                true,
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
                true,
            ),
            ("curl/8.5.0", true),
            ("python-requests/2.31", true),
            ("github-camo (876de43e)", true),
            (
                "Mozilla/5.0 (compatible; coccocbot-web/1.0; +http://help.coccoc.com/searchengine)",
                true,
            ),
            ("MyMonitor/1.0", true),
            ("", true),
        ];
        for (ua, bot) in cases {
            assert_eq!(filter.is_bot(Some(ua)), bot, "{ua}");
        }
        assert!(filter.is_bot(None));
        assert!(BotFilter::new(&["ab".to_owned()]).is_err());
    }

    #[test]
    fn prefetches() {
        let cases = [
            (vec![("sec-purpose", "prefetch;prerender")], true),
            (vec![("sec-purpose", "prefetch")], true),
            (vec![("purpose", "prefetch")], true),
            (vec![("x-moz", "prefetch")], true),
            (vec![("accept", "*/*")], false),
            (vec![], false),
        ];
        for (pairs, expected) in cases {
            let mut headers = HeaderMap::new();
            for (name, value) in &pairs {
                headers.insert(*name, value.parse().unwrap());
            }
            assert_eq!(is_prefetch(&headers), expected, "{pairs:?}");
        }
    }
}
