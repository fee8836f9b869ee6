//! The engine behind [`super::BotFilter`]: rules, their literal fragments, one automaton.
//!
//! Every rule is reached through literal fragments (keys) that any of its matches contains.
//! The automaton finds every key in the User-Agent in one overlapping, ASCII
//! case-insensitive pass; each key lists the rules it may start, and a rule is then
//! confirmed: by comparing the literal with its case (most of the robot list is plain names),
//! by the rule's regular expression, or by a word test written here. Rules are numbered in
//! the order they were added; among robot rules the lowest number wins, so the operator's
//! patterns and the hand-kept supplement decide the kind before the public list does.

use std::collections::HashMap;
use std::ops::Range;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use regex::bytes::Regex;
use regex_syntax::hir::{Class, Hir, HirKind, Look};

use super::kind::{RobotKind, Verdict};

/// Shortest key the automaton accepts: shorter fragments occur in most User-Agents and would
/// send every request through a confirmation.
const MIN_KEY_LEN: usize = 3;

/// Longest key prefix put into the automaton (see [`MatcherBuilder::add_rule`]). Eight bytes
/// tell most robot names apart (`googlebo`, `semrushb`) while the automaton's tables stay a
/// fraction of their size with whole names (about 7.7 MB with whole names).
const MAX_KEY_LEN: usize = 8;

/// What a rule says when it is confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    /// A person's browser: the verdict is human, whatever else matched.
    Human,
    /// A robot of this kind.
    Robot(RobotKind),
}

/// How a rule is confirmed once one of its keys is found.
#[derive(Debug)]
enum Confirm {
    /// This text in any case at the key's position (operator patterns, which are
    /// case-insensitive substrings).
    Found { text: Box<[u8]> },
    /// A literal with its case at the key's position, starting a word when `word_start`.
    Exact {
        literal: Box<[u8]>,
        word_start: bool,
    },
    /// The key itself in any case (`(?i)nikto`), starting a word when `word_start`.
    Caseless { text: Box<[u8]>, word_start: bool },
    /// The rule's regular expression, run over the whole User-Agent; a match counts only at
    /// the start of a word when `word_start`.
    Regex { regex: Regex, word_start: bool },
    /// "bot" ending a word, not in a phone's model name (see [`is_bot_word`]).
    BotWord,
    /// A generic word such as "crawler" (any case), not in a phone's model name.
    Word { text: Box<[u8]> },
}

#[derive(Debug)]
struct Rule {
    role: Role,
    confirm: Confirm,
}

/// The compiled rules. Immutable and shared; a verdict allocates nothing.
#[derive(Debug)]
pub(super) struct Matcher {
    automaton: AhoCorasick,
    /// Tokens naming an operating system, device or browser engine: a User-Agent with none is
    /// a tool. A separate automaton, asked only when no rule decided, because browsers
    /// write several of these and each found key costs a step of the overlapping scan.
    platforms: AhoCorasick,
    /// For each automaton pattern (key), the rules it may start, ascending.
    rules_of_key: Vec<Box<[u32]>>,
    rules: Vec<Rule>,
}

/// Collects rules and their keys, then compiles the automaton once.
#[derive(Debug, Default)]
pub(super) struct MatcherBuilder {
    key_ids: HashMap<Vec<u8>, usize>,
    keys: Vec<Vec<u8>>,
    rules_of_key: Vec<Vec<u32>>,
    rules: Vec<Rule>,
    platforms: Vec<String>,
}

impl MatcherBuilder {
    /// A case-insensitive substring anywhere in the User-Agent.
    pub(super) fn add_substring(&mut self, role: Role, text: &str) {
        let text = text.as_bytes().to_ascii_lowercase();
        let confirm = Confirm::Found {
            text: text.clone().into_boxed_slice(),
        };
        self.add_rule(role, confirm, vec![text]);
    }

    /// A regular expression (Rust `regex` syntax) that, when it begins with a letter or
    /// digit, only matches at the start of a word.
    ///
    /// Each branch of a top-level alternation becomes its own rule, so that the many plain
    /// names (`GTmetrix|DatadogSynthetics|Checkly`, `(?i)nikto|wpscan`) are confirmed by a
    /// comparison instead of a regular expression.
    pub(super) fn add_pattern(&mut self, role: Role, pattern: &str) -> Result<(), String> {
        // Bytes mode keeps `(?i)k` to {K, k} (Unicode adds the Kelvin sign), which is what
        // the ASCII case-insensitive automaton needs, and `\d` to ASCII digits.
        let hir = regex_syntax::ParserBuilder::new()
            .unicode(false)
            .utf8(false)
            .build()
            .parse(pattern)
            .map_err(|e| format!("robot pattern {pattern:?} does not parse: {e}"))?;
        let branches = match hir.kind() {
            HirKind::Alternation(branches) => branches.iter().collect(),
            _ => vec![&hir],
        };
        for branch in branches {
            self.add_branch(role, branch)
                .map_err(|e| format!("robot pattern {pattern:?}: {e}"))?;
        }
        Ok(())
    }

    fn add_branch(&mut self, role: Role, hir: &Hir) -> Result<(), String> {
        let word_start = starts_with_word_byte(hir);
        if let HirKind::Literal(literal) = hir.kind()
            && literal.0.len() >= MIN_KEY_LEN
        {
            let key = literal.0.to_ascii_lowercase();
            let literal = literal.0.clone();
            self.add_rule(
                role,
                Confirm::Exact {
                    literal,
                    word_start,
                },
                vec![key],
            );
            return Ok(());
        }
        if let Some(key) = caseless_text(hir).filter(|key| key.len() >= MIN_KEY_LEN) {
            let text = key.clone().into_boxed_slice();
            self.add_rule(role, Confirm::Caseless { text, word_start }, vec![key]);
            return Ok(());
        }
        let keys = required_literals(hir)
            .filter(|keys| keys.iter().all(|key| key.len() >= MIN_KEY_LEN))
            .ok_or_else(|| {
                format!("no literal of {MIN_KEY_LEN} characters or more that every match contains")
            })?;
        // The printed HIR parses back to the same expression (regex-syntax guarantees it), in
        // bytes mode like the parse above. The word start is checked in code rather than
        // written into the expression (`(?:^|[^0-9A-Za-z])…`), which would hide the
        // expression's own literal prefix from the regex engine.
        let regex = Regex::new(&hir.to_string()).map_err(|e| format!("does not compile: {e}"))?;
        self.add_rule(role, Confirm::Regex { regex, word_start }, keys);
        Ok(())
    }

    /// A rule written in code: found through `keys`, confirmed by a regular expression.
    pub(super) fn add_generic_regex(
        &mut self,
        kind: RobotKind,
        keys: &[&str],
        pattern: &str,
    ) -> Result<(), String> {
        let regex = Regex::new(pattern).map_err(|e| format!("generic rule {pattern:?}: {e}"))?;
        let keys = keys
            .iter()
            .map(|k| k.as_bytes().to_ascii_lowercase())
            .collect();
        let confirm = Confirm::Regex {
            regex,
            word_start: false,
        };
        self.add_rule(Role::Robot(kind), confirm, keys);
        Ok(())
    }

    /// The generic "bot" word (see [`is_bot_word`]).
    pub(super) fn add_bot_word(&mut self, kind: RobotKind) {
        self.add_rule(Role::Robot(kind), Confirm::BotWord, vec![b"bot".to_vec()]);
    }

    /// A generic word, anywhere outside a phone's model name.
    pub(super) fn add_word(&mut self, kind: RobotKind, word: &str) {
        let key = word.as_bytes().to_ascii_lowercase();
        let text = key.clone().into_boxed_slice();
        self.add_rule(Role::Robot(kind), Confirm::Word { text }, vec![key]);
    }

    /// A token naming an operating system, device or browser engine.
    pub(super) fn add_platform(&mut self, token: &str) {
        self.platforms.push(token.to_owned());
    }

    fn add_rule(&mut self, role: Role, confirm: Confirm, keys: Vec<Vec<u8>>) {
        let rule_id = u32::try_from(self.rules.len()).expect("fewer than 4 billion rules");
        self.rules.push(Rule { role, confirm });
        for mut key in keys {
            // Only a key's first bytes go into the automaton: fewer states keep its tables in
            // the processor's cache, which is most of a verdict's cost; rules compare their
            // whole text at the key's position when confirmed.
            key.truncate(MAX_KEY_LEN);
            let next_id = self.keys.len();
            let key_id = *self.key_ids.entry(key.clone()).or_insert(next_id);
            if key_id == next_id {
                self.keys.push(key);
                self.rules_of_key.push(Vec::new());
            }
            let rules = &mut self.rules_of_key[key_id];
            if rules.last() != Some(&rule_id) {
                rules.push(rule_id);
            }
        }
    }

    pub(super) fn build(self) -> Result<Matcher, String> {
        // A contiguous NFA rather than a DFA: the verdict cache in front of the matcher
        // (4,096 slots) answers repeated User-Agents, so the scan runs mostly for new
        // ones. Over the built-in list (1,668 keys) the DFA took 4.1 MB and 23 ms to
        // build, and scanned a browser's User-Agent in 0.68 µs; this takes 0.29 MB and
        // 3 ms, and 0.90 µs (release build, three typical User-Agents): 3.8 MB of every
        // instance's memory for 0.2 µs on an uncached User-Agent.
        // Standard semantics, because overlapping search needs them: every key is reported,
        // also one inside another.
        let automaton = AhoCorasick::builder()
            .kind(Some(AhoCorasickKind::ContiguousNFA))
            .match_kind(MatchKind::Standard)
            .ascii_case_insensitive(true)
            .build(&self.keys)
            .map_err(|e| format!("robot automaton: {e}"))?;
        // A few dozen tokens, one of which sits near the start of every browser's
        // User-Agent: the default (prefiltered) automaton stops at the first.
        let platforms = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(&self.platforms)
            .map_err(|e| format!("platform automaton: {e}"))?;
        Ok(Matcher {
            automaton,
            platforms,
            rules_of_key: self
                .rules_of_key
                .into_iter()
                .map(Vec::into_boxed_slice)
                .collect(),
            rules: self.rules,
        })
    }
}

impl Matcher {
    /// The verdict on a non-blank User-Agent.
    pub(super) fn judge(&self, user_agent: &str) -> Verdict {
        let hay = user_agent.as_bytes();
        // The best robot rule confirmed so far (lowest number).
        let mut robot: Option<u32> = None;
        // Rules that need a regular expression are confirmed after the scan, and only if no
        // cheaper rule has decided by then: a browser's in-app token or a listed robot name
        // later in the User-Agent usually does.
        let mut pending = Pending::default();
        let Ok(found_keys) = self.automaton.try_find_overlapping_iter(hay) else {
            // Unreachable: the automaton is built with standard semantics, which overlapping
            // search needs. Counting a robot beats dropping a reader.
            return Verdict::Human;
        };
        for found in found_keys {
            let span = found.start()..found.end();
            for &rule_id in &self.rules_of_key[found.pattern().as_usize()] {
                let rule = &self.rules[rule_id as usize];
                let is_robot = matches!(rule.role, Role::Robot(_));
                if is_robot && robot.is_some_and(|best| best < rule_id) {
                    continue;
                }
                if matches!(rule.confirm, Confirm::Regex { .. }) && pending.defer(rule_id) {
                    continue;
                }
                if confirm(&rule.confirm, user_agent, span.clone()) {
                    if !is_robot {
                        return Verdict::Human;
                    }
                    robot = Some(rule_id);
                }
            }
        }
        // Human rules first (a match wins), then robot rules better than the best so far.
        for rule_id in pending.ids() {
            let rule = &self.rules[rule_id as usize];
            if rule.role == Role::Human && confirm(&rule.confirm, user_agent, 0..0) {
                return Verdict::Human;
            }
        }
        for rule_id in pending.ids() {
            let rule = &self.rules[rule_id as usize];
            let better = robot.is_none_or(|best| rule_id < best);
            if rule.role != Role::Human && better && confirm(&rule.confirm, user_agent, 0..0) {
                robot = Some(rule_id);
            }
        }
        match robot.map(|id| self.rules[id as usize].role) {
            Some(Role::Robot(kind)) => Verdict::Robot(kind),
            _ if !self.platforms.is_match(hay) => Verdict::Robot(RobotKind::Tool),
            _ => Verdict::Human,
        }
    }

    /// How many rules and keys were compiled (for tests and the bench's report).
    #[cfg(test)]
    pub(super) fn sizes(&self) -> (usize, usize) {
        (self.rules.len(), self.rules_of_key.len())
    }

    /// The keys found in `user_agent` whose rules need a regular expression or a word test,
    /// the costly confirmations (for the test that keeps them off browsers' path).
    #[cfg(test)]
    pub(super) fn costly_keys(&self, user_agent: &str) -> Vec<String> {
        self.automaton
            .find_overlapping_iter(user_agent)
            .filter(|found| {
                self.rules_of_key[found.pattern().as_usize()]
                    .iter()
                    .any(|&id| matches!(self.rules[id as usize].confirm, Confirm::Regex { .. }))
            })
            .map(|found| user_agent[found.start()..found.end()].to_owned())
            .collect()
    }
}

/// Regular-expression rules found during a scan, kept without allocating. Past its
/// capacity a rule is confirmed at once instead (`defer` says no).
#[derive(Default)]
struct Pending {
    ids: [u32; 8],
    len: usize,
}

impl Pending {
    fn defer(&mut self, rule_id: u32) -> bool {
        if self.ids[..self.len].contains(&rule_id) {
            return true;
        }
        let Some(slot) = self.ids.get_mut(self.len) else {
            return false;
        };
        *slot = rule_id;
        self.len += 1;
        true
    }

    /// The deferred rules, lowest (highest priority) first.
    fn ids(&self) -> impl Iterator<Item = u32> {
        let mut ids = self.ids;
        ids[..self.len].sort_unstable();
        ids.into_iter().take(self.len)
    }
}

fn confirm(confirm: &Confirm, user_agent: &str, span: Range<usize>) -> bool {
    let hay = user_agent.as_bytes();
    match confirm {
        Confirm::Found { text } => at_caseless(hay, span.start, text),
        Confirm::Exact {
            literal,
            word_start,
        } => {
            hay.get(span.start..span.start + literal.len()) == Some(&literal[..])
                && (!word_start || starts_word(hay, span.start))
        }
        Confirm::Caseless { text, word_start } => {
            at_caseless(hay, span.start, text) && (!word_start || starts_word(hay, span.start))
        }
        Confirm::Regex { regex, word_start } => {
            if !word_start {
                return regex.is_match(hay);
            }
            // Every match, also one that starts inside an earlier one that failed the test.
            let mut from = 0;
            while let Some(found) = regex.find_at(hay, from) {
                if starts_word(hay, found.start()) {
                    return true;
                }
                from = found.start() + 1;
            }
            false
        }
        Confirm::BotWord => is_bot_word(hay, span),
        Confirm::Word { text } => {
            at_caseless(hay, span.start, text) && !in_phone_model(hay, span.start)
        }
    }
}

/// True when `text` (lowercase) is at `at`, in any case.
fn at_caseless(hay: &[u8], at: usize, text: &[u8]) -> bool {
    hay.get(at..at + text.len())
        .is_some_and(|found| found.eq_ignore_ascii_case(text))
}

/// True when no letter or digit comes right before `at`.
fn starts_word(hay: &[u8], at: usize) -> bool {
    at == 0 || !hay[at - 1].is_ascii_alphanumeric()
}

/// "bot" (any case) that ends a word, as robots write it (`Googlebot/2.1`, `AhrefsBot;`,
/// `KD Bot`), but not:
/// - followed by a letter (`Banca Caboto`, `BOTECH` TVs),
/// - the phone brand CUBOT (`CUBOT X30`, `CUBOT_NOTE_20`),
/// - inside an Android phone's model name (`M bot 60`, `POWER BOT`, `XBot Junior`).
fn is_bot_word(hay: &[u8], span: Range<usize>) -> bool {
    let followed_by_letter = hay.get(span.end).is_some_and(u8::is_ascii_alphabetic);
    let cubot = span.start >= 2 && hay[span.start - 2..span.start].eq_ignore_ascii_case(b"cu");
    !followed_by_letter && !cubot && !in_phone_model(hay, span.start)
}

/// True when `at` lies in the first parenthesised comment of an Android User-Agent
/// (`Mozilla/5.0 (Linux; Android 7.0; M bot 54 Build/NRD90M) …`), where phone makers put
/// model names. Robots that run Android Chrome write their own name after it.
fn in_phone_model(hay: &[u8], at: usize) -> bool {
    let Some(open) = hay.iter().position(|&b| b == b'(') else {
        return false;
    };
    let close = hay[open..]
        .iter()
        .position(|&b| b == b')')
        .map_or(hay.len(), |offset| open + offset);
    (open..close).contains(&at) && contains(&hay[open..close], b"Android")
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|window| window == needle)
}

/// Lowercased literals, one of which every match of `hir` contains; `None` when there is no
/// such set. Prefers the set whose shortest literal is longest (fewer false candidates).
fn required_literals(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    if let Some(text) = exact_text(hir) {
        return (!text.is_empty()).then(|| vec![text]);
    }
    match hir.kind() {
        HirKind::Capture(capture) => required_literals(&capture.sub),
        HirKind::Repetition(repetition) if repetition.min >= 1 => {
            required_literals(&repetition.sub)
        }
        HirKind::Alternation(branches) => {
            let mut all = Vec::new();
            for branch in branches {
                all.extend(required_literals(branch)?);
            }
            Some(all)
        }
        HirKind::Concat(parts) => {
            let mut best: Option<Vec<Vec<u8>>> = None;
            let mut consider = |candidate: Vec<Vec<u8>>| {
                if best
                    .as_ref()
                    .is_none_or(|b| quality(&candidate) > quality(b))
                {
                    best = Some(candidate);
                }
            };
            // Adjacent parts of fixed text join into one longer literal.
            let mut run = Vec::new();
            for part in parts {
                if let Some(text) = exact_text(part) {
                    run.extend(text);
                    continue;
                }
                if !run.is_empty() {
                    consider(vec![std::mem::take(&mut run)]);
                }
                if let Some(candidate) = required_literals(part) {
                    consider(candidate);
                }
            }
            if !run.is_empty() {
                consider(vec![run]);
            }
            best
        }
        _ => None,
    }
}

/// Longest shortest literal first, then fewer literals.
fn quality(literals: &[Vec<u8>]) -> (usize, std::cmp::Reverse<usize>) {
    let shortest = literals.iter().map(Vec::len).min().unwrap_or(0);
    (shortest, std::cmp::Reverse(literals.len()))
}

/// The lowercased text that `hir` always matches, if it matches exactly one text up to ASCII
/// case (a literal, `[Gg]`, `(?i)bot`).
fn exact_text(hir: &Hir) -> Option<Vec<u8>> {
    match hir.kind() {
        HirKind::Literal(literal) => Some(literal.0.to_ascii_lowercase()),
        HirKind::Class(Class::Bytes(class)) => {
            let mut members = class
                .ranges()
                .iter()
                .flat_map(|range| range.start()..=range.end());
            let first = members.next()?.to_ascii_lowercase();
            members
                .all(|b| b.to_ascii_lowercase() == first)
                .then(|| vec![first])
        }
        HirKind::Capture(capture) => exact_text(&capture.sub),
        HirKind::Concat(parts) => {
            let mut text = Vec::new();
            for part in parts {
                text.extend(exact_text(part)?);
            }
            Some(text)
        }
        _ => None,
    }
}

/// The lowercased text of `hir` when it matches exactly that text in any ASCII case and
/// nothing else (`(?i)nikto`, or a literal without letters such as `://`).
fn caseless_text(hir: &Hir) -> Option<Vec<u8>> {
    match hir.kind() {
        HirKind::Literal(literal) if !literal.0.iter().any(u8::is_ascii_alphabetic) => {
            Some(literal.0.to_vec())
        }
        HirKind::Class(Class::Bytes(class)) => {
            let members: Vec<u8> = class
                .ranges()
                .iter()
                .flat_map(|range| range.start()..=range.end())
                .collect();
            match members[..] {
                [only] if !only.is_ascii_alphabetic() => Some(vec![only]),
                [upper, lower]
                    if upper.is_ascii_uppercase() && upper.to_ascii_lowercase() == lower =>
                {
                    Some(vec![lower])
                }
                _ => None,
            }
        }
        HirKind::Capture(capture) => caseless_text(&capture.sub),
        HirKind::Concat(parts) => {
            let mut text = Vec::new();
            for part in parts {
                text.extend(caseless_text(part)?);
            }
            Some(text)
        }
        _ => None,
    }
}

/// True when every match of `hir` begins with an ASCII letter or digit (so the rule can be
/// held to the start of a word). A leading `^` is looked through.
fn starts_with_word_byte(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Literal(literal) => literal.0.first().is_some_and(u8::is_ascii_alphanumeric),
        HirKind::Class(Class::Bytes(class)) => class
            .ranges()
            .iter()
            .all(|range| (range.start()..=range.end()).all(|b: u8| b.is_ascii_alphanumeric())),
        HirKind::Capture(capture) => starts_with_word_byte(&capture.sub),
        HirKind::Repetition(repetition) => {
            repetition.min >= 1 && starts_with_word_byte(&repetition.sub)
        }
        HirKind::Alternation(branches) => branches.iter().all(starts_with_word_byte),
        HirKind::Concat(parts) => {
            let mut parts = parts
                .iter()
                .skip_while(|part| matches!(part.kind(), HirKind::Look(Look::Start)));
            parts.next().is_some_and(starts_with_word_byte)
        }
        _ => false,
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    fn parse(pattern: &str) -> Hir {
        regex_syntax::ParserBuilder::new()
            .unicode(false)
            .utf8(false)
            .build()
            .parse(pattern)
            .expect("a valid pattern")
    }

    fn keys(pattern: &str) -> Option<Vec<String>> {
        required_literals(&parse(pattern)).map(|keys| {
            keys.into_iter()
                .map(|k| String::from_utf8(k).expect("ASCII"))
                .collect()
        })
    }

    #[test]
    fn required_literals_of_the_list_s_shapes() {
        assert_eq!(keys(r"Googlebot\/"), Some(vec!["googlebot/".into()]));
        assert_eq!(keys(r"[wW]get"), Some(vec!["wget".into()]));
        assert_eq!(keys(r"S[eE][mM]rushBot"), Some(vec!["semrushbot".into()]));
        assert_eq!(
            keys(r"AdsBot-Google([^-]|$)"),
            Some(vec!["adsbot-google".into()])
        );
        assert_eq!(keys(r"(^| )PTST\/"), Some(vec!["ptst/".into()]));
        assert_eq!(
            keys(r"Automaton|Newsify Feed Fetcher"),
            Some(vec!["automaton".into(), "newsify feed fetcher".into()])
        );
        assert_eq!(
            keys(r"ContextualBot[\s\S]*outcomes\.net"),
            Some(vec!["contextualbot".into()])
        );
        assert_eq!(keys(r"(?i)nikto"), Some(vec!["nikto".into()]));
        assert_eq!(keys(r"[a-z]+"), None);
    }

    #[test]
    fn word_starts() {
        assert!(starts_with_word_byte(&parse("Sonic")));
        assert!(starts_with_word_byte(&parse("^curl")));
        assert!(starts_with_word_byte(&parse("[wW]get")));
        assert!(starts_with_word_byte(&parse("Chirp|gotosocial")));
        assert!(!starts_with_word_byte(&parse(r"(^| )sentry\/")));
        assert!(!starts_with_word_byte(&parse(r"\[FBAN/")));
    }

    #[test]
    fn bot_as_a_word() {
        let at = |ua: &str| {
            let start = ua.to_ascii_lowercase().find("bot").expect("has bot");
            is_bot_word(ua.as_bytes(), start..start + 3)
        };
        assert!(at("Mozilla/5.0 (compatible; Googlebot/2.1)"));
        assert!(at("KD Bot"));
        assert!(at("memoryBot/1.20"));
        assert!(!at("Mozilla/5.0 (Linux; Android 10; CUBOT X30) Chrome/120"));
        assert!(!at(
            "Mozilla/5.0 (Windows NT 6.1; Trident/7.0; Banca Caboto s.p.a.; rv:11.0)"
        ));
        assert!(!at("Mozilla/5.0 (Linux; Android 7.0; M bot 54) Chrome/78"));
        assert!(!at("HbbTV/1.5.1 (+DRM;BOTECH;ATV R2;)"));
    }
}
