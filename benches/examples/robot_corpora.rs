//! Scores the robot filter on any corpus of User-Agents, one per line, without shipping
//! the corpus (some public ones are under licences this repository does not take):
//!
//! ```text
//! FOOTFALL_CRAWLER_CORPUS=/tmp/crawlers.txt FOOTFALL_BROWSER_CORPUS=/tmp/browsers.txt \
//!   cargo run --release -p footfall-benches --example robot_corpora
//! ```
//!
//! Crawlers judged human and browsers judged robots are listed, then the figures.
//! `crates/footfall-server/data/robots/README.md` says which corpora were scored this way.

use footfall_server::bots::{BotFilter, Verdict};

fn read(var: &str) -> Option<Vec<String>> {
    let path = std::env::var(var).ok()?;
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{var}={path}: {e}"));
    Some(
        text.lines()
            .filter(|line| !line.trim().is_empty())
            .map(str::to_owned)
            .collect(),
    )
}

fn main() {
    let filter = BotFilter::default();
    let crawlers = read("FOOTFALL_CRAWLER_CORPUS");
    let browsers = read("FOOTFALL_BROWSER_CORPUS");
    if crawlers.is_none() && browsers.is_none() {
        eprintln!(
            "set FOOTFALL_CRAWLER_CORPUS and/or FOOTFALL_BROWSER_CORPUS to files of User-Agents"
        );
        std::process::exit(2);
    }
    if let Some(uas) = crawlers {
        let misses: Vec<&String> = uas.iter().filter(|ua| !filter.is_bot(Some(ua))).collect();
        for ua in &misses {
            println!("judged human: {ua}");
        }
        let caught = uas.len() - misses.len();
        println!(
            "crawlers: {caught} of {} judged robot ({:.2} %)",
            uas.len(),
            100.0 * caught as f64 / uas.len().max(1) as f64
        );
    }
    if let Some(uas) = browsers {
        let mut robots = 0;
        for ua in &uas {
            if let Verdict::Robot(kind) = filter.verdict(Some(ua)) {
                robots += 1;
                println!("judged robot ({}): {ua}", kind.label());
            }
        }
        println!("browsers: {robots} of {} judged robot", uas.len());
    }
}
