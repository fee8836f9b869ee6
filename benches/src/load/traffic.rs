//! The simulated audience: which site each hit is for, which client sends it, and what
//! the service must count for it.
//!
//! Sites are chosen with Zipf popularity (a few portals get most hits). A hit comes from
//! a returning visitor of that site with probability `returning`, otherwise from a client
//! drawn uniformly from a population of `clients`. Each client has its own IPv4 address
//! (sent in `X-Forwarded-For`, which the service believes from its trusted proxy) and one
//! of a few browser User-Agents, so distinct clients are distinct visitors. A share of
//! hits (`bots`) carries a crawler's User-Agent; the service must drop those.
//!
//! The exact figures the service should report are kept here: pageviews are the
//! accepted hits; visitors are the distinct clients of a site; and because a run lasts
//! far less than the 30-minute visit timeout and every site is new, each visitor makes
//! exactly one visit (unless the run crosses the site's local midnight).

use std::collections::HashSet;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};

/// Browser User-Agents, one per client by its number.
const BROWSER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-A546E) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
];

/// Crawler User-Agents the service's bot filter knows.
const BOT_AGENTS: &[&str] = &[
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; coccocbot-web/1.0; +http://help.coccoc.com/searchengine)",
    "curl/8.5.0",
];

/// The shape of the traffic.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrafficMix {
    /// How many sites share the traffic.
    pub sites: usize,
    /// The Zipf exponent of site popularity (0 = uniform).
    pub zipf: f64,
    /// The share of hits from a returning visitor of the same site.
    pub returning: f64,
    /// The share of hits from crawlers.
    pub bots: f64,
    /// The size of the client population.
    pub clients: u32,
}

/// One hit to send.
#[derive(Debug, Clone)]
pub struct PlannedHit {
    /// The site's index.
    pub site: usize,
    /// The client's number.
    pub client: u32,
    /// Whether it is a crawler (the service must drop it).
    pub bot: bool,
    /// The page path.
    pub page: u32,
}

impl PlannedHit {
    /// The `X-Forwarded-For` address of the client: 10.x.y.z, one per client.
    #[must_use]
    pub fn client_ip(&self) -> String {
        let [_, a, b, c] = self.client.to_be_bytes();
        format!("10.{a}.{b}.{c}")
    }

    /// The User-Agent of the hit.
    #[must_use]
    pub fn user_agent(&self) -> &'static str {
        if self.bot {
            BOT_AGENTS[self.client as usize % BOT_AGENTS.len()]
        } else {
            BROWSER_AGENTS[self.client as usize % BROWSER_AGENTS.len()]
        }
    }
}

/// A generator of hits with its own random stream (one per connection).
#[derive(Debug)]
pub struct Traffic {
    mix: TrafficMix,
    rng: SmallRng,
    zipf: Option<Zipf<f64>>,
    /// Clients already seen per site, to draw returning visitors from.
    seen: Vec<Vec<u32>>,
}

impl Traffic {
    /// A generator for `mix` seeded with `seed`.
    ///
    /// # Panics
    ///
    /// When `mix` has no sites or no clients.
    #[must_use]
    pub fn new(mix: &TrafficMix, seed: u64) -> Self {
        assert!(
            mix.sites > 0 && mix.clients > 0,
            "a mix needs sites and clients"
        );
        let zipf = (mix.zipf > 0.0).then(|| {
            Zipf::new(mix.sites as f64, mix.zipf).expect("the Zipf parameters are positive")
        });
        Traffic {
            mix: mix.clone(),
            rng: SmallRng::seed_from_u64(seed),
            zipf,
            seen: vec![Vec::new(); mix.sites],
        }
    }

    /// The next hit.
    pub fn next_hit(&mut self) -> PlannedHit {
        let site = match &self.zipf {
            // Zipf draws 1..=n.
            Some(zipf) => (zipf.sample(&mut self.rng) as usize).clamp(1, self.mix.sites) - 1,
            None => self.rng.random_range(0..self.mix.sites),
        };
        let page = self.rng.random_range(0..50);
        if self.rng.random_bool(self.mix.bots.clamp(0.0, 1.0)) {
            let client = self.rng.random_range(0..self.mix.clients);
            return PlannedHit {
                site,
                client,
                bot: true,
                page,
            };
        }
        let seen = &mut self.seen[site];
        let client = if !seen.is_empty() && self.rng.random_bool(self.mix.returning.clamp(0.0, 1.0))
        {
            seen[self.rng.random_range(0..seen.len())]
        } else {
            let client = self.rng.random_range(0..self.mix.clients);
            // The list is a sample to draw from, bounded so memory is too.
            if seen.len() < 4096 {
                seen.push(client);
            }
            client
        };
        PlannedHit {
            site,
            client,
            bot: false,
            page,
        }
    }
}

/// What the service must count, kept by the harness from the answers it got.
#[derive(Debug, Clone, Default)]
pub struct Truth {
    /// Per site: hits answered 2xx that the service must count.
    pub pageviews: Vec<u64>,
    /// Per site: the distinct clients among those.
    pub visitors: Vec<HashSet<u32>>,
    /// Bot hits answered 2xx (the service must drop them, with reason `bot`).
    pub bots_sent: u64,
}

impl Truth {
    /// An empty record for `sites` sites.
    #[must_use]
    pub fn new(sites: usize) -> Self {
        Truth {
            pageviews: vec![0; sites],
            visitors: vec![HashSet::new(); sites],
            bots_sent: 0,
        }
    }

    /// Notes a hit the service acknowledged.
    pub fn record(&mut self, hit: &PlannedHit) {
        if hit.bot {
            self.bots_sent += 1;
        } else {
            self.pageviews[hit.site] += 1;
            self.visitors[hit.site].insert(hit.client);
        }
    }

    /// Adds another connection's record.
    pub fn merge(&mut self, other: Truth) {
        for (mine, theirs) in self.pageviews.iter_mut().zip(other.pageviews) {
            *mine += theirs;
        }
        for (mine, theirs) in self.visitors.iter_mut().zip(other.visitors) {
            mine.extend(theirs);
        }
        self.bots_sent += other.bots_sent;
    }

    /// All pageviews the service must count.
    #[must_use]
    pub fn total_pageviews(&self) -> u64 {
        self.pageviews.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_shares_are_respected() {
        let mix = TrafficMix {
            sites: 100,
            zipf: 1.0,
            returning: 0.3,
            bots: 0.05,
            clients: 5000,
        };
        let mut traffic = Traffic::new(&mix, 7);
        let mut truth = Truth::new(mix.sites);
        for _ in 0..20_000 {
            truth.record(&traffic.next_hit());
        }
        let bots = truth.bots_sent as f64 / 20_000.0;
        assert!((0.03..0.07).contains(&bots), "bot share {bots}");
        // Zipf: the first site is the most popular.
        assert!(truth.pageviews[0] > truth.pageviews[50] * 10);
        assert_eq!(truth.total_pageviews() + truth.bots_sent, 20_000);
    }
}
