//! `footfall admin-token new`: makes an admin token for some sites (or an operator) and
//! prints the tokens file entry that accepts it, which holds only the token's digest.
//!
//! The entry goes to standard output, so `footfall admin-token new --site caukee >>
//! tokens.toml` adds it to the file; the token itself goes to standard error, shown
//! once: nothing keeps it, and it cannot be recovered from the entry.

use std::io::Write;

use anyhow::{Context, bail};
use base64::Engine as _;
use clap::{Args, Subcommand};
use footfall::SiteId;
use serde::Serialize;

use crate::admin::tokens::{Scope, TokenGrant, digest_line};

/// The `admin-token` subcommands.
#[derive(Debug, Subcommand)]
pub enum AdminTokenCommand {
    /// Make a new token: print it once (standard error) and the `[[tokens]]` entry of
    /// the tokens file that accepts it, as a digest (standard output).
    New(NewTokenArgs),
}

/// Flags of `footfall admin-token new`.
#[derive(Debug, Args)]
pub struct NewTokenArgs {
    /// A site the token manages (repeat for several).
    #[arg(long = "site", required_unless_present = "operator")]
    pub sites: Vec<String>,
    /// An operator's token instead: it manages every site.
    #[arg(long, conflicts_with = "sites")]
    pub operator: bool,
    /// Who holds it, kept in the entry for people reading the file.
    #[arg(long, default_value = "")]
    pub note: String,
}

#[derive(Serialize)]
struct Entry<'a> {
    digest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sites: Option<Vec<&'a str>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    operator: bool,
    #[serde(skip_serializing_if = "str::is_empty")]
    note: &'a str,
}

#[derive(Serialize)]
struct File<'a> {
    tokens: [Entry<'a>; 1],
}

/// Runs an `admin-token` command: the entry to `out`, the token to `shown_once`.
pub fn run(
    command: &AdminTokenCommand,
    out: &mut impl Write,
    shown_once: &mut impl Write,
) -> anyhow::Result<()> {
    let AdminTokenCommand::New(args) = command;
    let scope = if args.operator {
        Scope::Operator
    } else {
        let mut ids = Vec::with_capacity(args.sites.len());
        for site in &args.sites {
            ids.push(SiteId::new(site).with_context(|| format!("--site {site:?}"))?);
        }
        if ids.is_empty() {
            bail!("name the sites the token manages (--site caukee), or give --operator");
        }
        Scope::Sites(ids)
    };
    let token = new_token()?;
    let fingerprint = TokenGrant::new(&token, scope.clone()).fingerprint();
    let sites = match &scope {
        Scope::Operator => None,
        Scope::Sites(ids) => Some(ids.iter().map(SiteId::as_str).collect()),
    };
    let entry = toml::to_string(&File {
        tokens: [Entry {
            digest: digest_line(&token),
            sites,
            operator: args.operator,
            note: &args.note,
        }],
    })
    .context("writing the entry")?;
    writeln!(
        shown_once,
        "The new admin token ({}, fingerprint {fingerprint}); it is shown only now, give it to its holder:\n{token}",
        scope.label()
    )?;
    writeln!(
        out,
        "# token {fingerprint} ({}): add to the admin tokens file, then reload (SIGHUP)\n{entry}",
        scope.label()
    )?;
    Ok(())
}

/// 32 random bytes from the operating system, base64url: 256 bits, no padding, safe in
/// a header and a shell.
fn new_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("the system's random source: {e}"))?;
    Ok(format!(
        "ff_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::tokens::{AdminTokens, parse_tokens_file};

    fn new(args: NewTokenArgs) -> (String, String) {
        let (mut out, mut shown) = (Vec::new(), Vec::new());
        run(&AdminTokenCommand::New(args), &mut out, &mut shown).unwrap();
        let shown = String::from_utf8(shown).unwrap();
        let token = shown.lines().last().unwrap().to_owned();
        (String::from_utf8(out).unwrap(), token)
    }

    #[test]
    fn the_entry_accepts_the_token_shown_once_and_holds_only_its_digest() {
        let (entry, token) = new(NewTokenArgs {
            sites: vec!["caukee".into(), "tracu".into()],
            operator: false,
            note: "Cầu Kè \"webmaster\"".into(),
        });
        assert!(token.starts_with("ff_") && token.len() == 46, "{token}");
        assert!(!entry.contains(&token), "{entry}");
        let grants = parse_tokens_file(&entry, std::path::Path::new(".")).unwrap();
        let caller = AdminTokens::with_grants(grants).identify(&token).unwrap();
        assert_eq!(caller.scope.label(), "sites:caukee,tracu");
        assert!(entry.contains(&caller.fingerprint.to_string()), "{entry}");

        let (entry, token) = new(NewTokenArgs {
            sites: vec![],
            operator: true,
            note: String::new(),
        });
        let grants = parse_tokens_file(&entry, std::path::Path::new(".")).unwrap();
        let caller = AdminTokens::with_grants(grants).identify(&token).unwrap();
        assert!(caller.scope.is_operator());
        // Two tokens are never the same.
        assert_ne!(new_token().unwrap(), new_token().unwrap());
    }

    #[test]
    fn a_bad_site_is_named() {
        let error = run(
            &AdminTokenCommand::New(NewTokenArgs {
                sites: vec!["Cầu Kè".into()],
                operator: false,
                note: String::new(),
            }),
            &mut Vec::new(),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(format!("{error:#}").contains("--site"), "{error:#}");
    }
}
