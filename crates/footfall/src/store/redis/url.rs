//! Which Redis to talk to, from a URL.

use crate::store::StoreError;

/// Where the store connects, parsed from its URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Target {
    /// One server (`redis://host:port/db`, or `rediss://…` over TLS); the URL is handed to
    /// redis-rs as given.
    Single {
        /// The URL.
        url: String,
        /// True for `rediss://`.
        tls: bool,
    },
    /// Seed nodes of a Redis Cluster (`redis+cluster://[user:password@]h1:p1,h2:p2`, or
    /// `rediss+cluster://…` over TLS).
    Cluster {
        /// `redis://host:port` (`rediss://` over TLS) of each seed node.
        seeds: Vec<String>,
        /// Credentials shared by every node.
        username: Option<String>,
        /// Password shared by every node.
        password: Option<String>,
        /// True for `rediss+cluster://`: every node, seeds and discovered ones, over TLS.
        tls: bool,
    },
}

impl Target {
    /// True when the connections use TLS.
    pub(super) fn tls(&self) -> bool {
        match self {
            Target::Single { tls, .. } | Target::Cluster { tls, .. } => *tls,
        }
    }
}

const FORMS: &str = "expected redis://host:port/db, redis+cluster://host1:port1,host2:port2, \
     or the same over TLS: rediss://…, rediss+cluster://…";

/// Parses a store URL, naming what is wrong with it.
pub(super) fn parse(url: &str) -> Result<Target, StoreError> {
    let bad = |what: String| StoreError::Config(format!("Redis URL {:?}: {what}", redact(url)));
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(bad(format!("no scheme; {FORMS}")));
    };
    match scheme {
        "redis" | "rediss" => {
            if rest.is_empty() || rest.starts_with('/') {
                return Err(bad("no host".to_owned()));
            }
            Ok(Target::Single {
                url: url.to_owned(),
                tls: scheme == "rediss",
            })
        }
        "redis+cluster" => parse_cluster(rest, false).map_err(bad),
        "rediss+cluster" => parse_cluster(rest, true).map_err(bad),
        other => Err(bad(format!("unknown scheme {other:?}; {FORMS}"))),
    }
}

fn parse_cluster(rest: &str, tls: bool) -> Result<Target, String> {
    let (userinfo, hosts) = match rest.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, rest),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(userinfo) => match userinfo.split_once(':') {
            Some((user, password)) => (
                (!user.is_empty()).then(|| user.to_owned()),
                Some(password.to_owned()),
            ),
            None => (Some(userinfo.to_owned()), None),
        },
    };
    let hosts = hosts.trim_end_matches('/');
    if hosts.contains('/') {
        return Err(
            "a cluster URL takes no database or path (clusters have only database 0)".to_owned(),
        );
    }
    let mut seeds = Vec::new();
    for node in hosts.split(',') {
        let Some((host, port)) = node.rsplit_once(':') else {
            return Err(format!("seed node {node:?} has no port (host:port)"));
        };
        if host.is_empty() {
            return Err(format!("seed node {node:?} has no host"));
        }
        let port: u16 = port
            .parse()
            .ok()
            .filter(|&port| port != 0)
            .ok_or_else(|| format!("seed node {node:?}: port {port:?} is not 1-65535"))?;
        let scheme = if tls { "rediss" } else { "redis" };
        seeds.push(format!("{scheme}://{host}:{port}"));
    }
    Ok(Target::Cluster {
        seeds,
        username,
        password,
        tls,
    })
}

/// The URL with any password replaced, for messages and `Debug`.
pub(super) use crate::store::printable_location as redact;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_cluster_urls_parse() {
        assert_eq!(
            parse("redis://127.0.0.1:6379/2").unwrap(),
            Target::Single {
                url: "redis://127.0.0.1:6379/2".to_owned(),
                tls: false,
            }
        );
        assert_eq!(
            parse("redis+cluster://u:p@a:7000,b:7001/").unwrap(),
            Target::Cluster {
                seeds: vec!["redis://a:7000".to_owned(), "redis://b:7001".to_owned()],
                username: Some("u".to_owned()),
                password: Some("p".to_owned()),
                tls: false,
            }
        );
    }

    #[test]
    fn tls_urls_parse() {
        let single = parse("rediss://redis.example.vn:6380/1").unwrap();
        assert_eq!(
            single,
            Target::Single {
                url: "rediss://redis.example.vn:6380/1".to_owned(),
                tls: true,
            }
        );
        assert!(single.tls());
        let cluster = parse("rediss+cluster://:p@a:7000,b:7001").unwrap();
        assert_eq!(
            cluster,
            Target::Cluster {
                seeds: vec!["rediss://a:7000".to_owned(), "rediss://b:7001".to_owned()],
                username: None,
                password: Some("p".to_owned()),
                tls: true,
            }
        );
        assert!(cluster.tls());
        assert!(!parse("redis://a:1").unwrap().tls());
    }

    #[test]
    fn redact_hides_passwords_in_every_scheme() {
        for (url, expected) in [
            ("redis://u:secret@a:1/0", "redis://u:***@a:1/0"),
            ("rediss://:secret@a:1/0", "rediss://:***@a:1/0"),
            (
                "redis+cluster://u:secret@a:1,b:2",
                "redis+cluster://u:***@a:1,b:2",
            ),
            (
                "rediss+cluster://u:secret@a:1,b:2",
                "rediss+cluster://u:***@a:1,b:2",
            ),
            ("rediss://a:1", "rediss://a:1"),
        ] {
            assert_eq!(redact(url), expected);
        }
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        for (url, expected) in [
            ("localhost:6379", "no scheme"),
            ("http://x:1", "unknown scheme"),
            ("redis://", "no host"),
            ("rediss://", "no host"),
            ("rediss+cluster://a:7000,b", "has no port"),
            ("redis+tls://a:1", "unknown scheme"),
            ("redis+cluster://a:7000,b", "has no port"),
            ("redis+cluster://a:70000", "not 1-65535"),
            ("redis+cluster://:7000", "has no host"),
            ("redis+cluster://a:7000/3", "no database"),
        ] {
            let message = parse(url).unwrap_err().to_string();
            assert!(message.contains(expected), "{url}: {message}");
        }
        for url in ["redis+cluster://u:secret@a", "rediss+cluster://u:secret@a"] {
            let message = parse(url).unwrap_err().to_string();
            assert!(!message.contains("secret"), "{message}");
        }
    }
}
