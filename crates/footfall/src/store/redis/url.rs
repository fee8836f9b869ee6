//! Which Redis to talk to, from a URL.

use crate::store::StoreError;

/// Where the store connects, parsed from its URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Target {
    /// One server (`redis://host:port/db`); the URL is handed to redis-rs as given.
    Single(String),
    /// Seed nodes of a Redis Cluster (`redis+cluster://[user:password@]h1:p1,h2:p2`).
    Cluster {
        /// `redis://host:port` of each seed node.
        seeds: Vec<String>,
        /// Credentials shared by every node.
        username: Option<String>,
        /// Password shared by every node.
        password: Option<String>,
    },
}

const FORMS: &str = "expected redis://host:port/db, or redis+cluster://host1:port1,host2:port2";

/// Parses a store URL, naming what is wrong with it.
pub(super) fn parse(url: &str) -> Result<Target, StoreError> {
    let bad = |what: String| StoreError::Config(format!("Redis URL {:?}: {what}", redact(url)));
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(bad(format!("no scheme; {FORMS}")));
    };
    match scheme {
        "redis" => {
            if rest.is_empty() || rest.starts_with('/') {
                return Err(bad("no host".to_owned()));
            }
            Ok(Target::Single(url.to_owned()))
        }
        // TLS would add a TLS stack (rustls and a crypto provider) to every build; this
        // build leaves it out, so say so rather than fail obscurely inside redis-rs.
        "rediss" => Err(bad(
            "TLS (rediss://) is not supported by this build; connect through a TLS \
             tunnel (e.g. stunnel) with redis://, or build footfall with redis-rs TLS"
                .to_owned(),
        )),
        "redis+cluster" => parse_cluster(rest).map_err(bad),
        other => Err(bad(format!("unknown scheme {other:?}; {FORMS}"))),
    }
}

fn parse_cluster(rest: &str) -> Result<Target, String> {
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
        seeds.push(format!("redis://{host}:{port}"));
    }
    Ok(Target::Cluster {
        seeds,
        username,
        password,
    })
}

/// The URL with any password replaced, for messages and `Debug`.
pub(super) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, hosts)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{scheme}://{user}:***@{hosts}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_cluster_urls_parse() {
        assert_eq!(
            parse("redis://127.0.0.1:6379/2").unwrap(),
            Target::Single("redis://127.0.0.1:6379/2".to_owned())
        );
        assert_eq!(
            parse("redis+cluster://u:p@a:7000,b:7001/").unwrap(),
            Target::Cluster {
                seeds: vec!["redis://a:7000".to_owned(), "redis://b:7001".to_owned()],
                username: Some("u".to_owned()),
                password: Some("p".to_owned()),
            }
        );
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        for (url, expected) in [
            ("localhost:6379", "no scheme"),
            ("http://x:1", "unknown scheme"),
            ("redis://", "no host"),
            ("rediss://x:1", "TLS"),
            ("redis+cluster://a:7000,b", "has no port"),
            ("redis+cluster://a:70000", "not 1-65535"),
            ("redis+cluster://:7000", "has no host"),
            ("redis+cluster://a:7000/3", "no database"),
        ] {
            let message = parse(url).unwrap_err().to_string();
            assert!(message.contains(expected), "{url}: {message}");
        }
        let message = parse("redis+cluster://u:secret@a").unwrap_err().to_string();
        assert!(!message.contains("secret"), "{message}");
    }
}
