//! `footfall trust keygen|issue|verify`: issuer keys and signed credentials, offline.
//!
//! [`run`] takes the current time as an argument and writes to any `Write`, so the
//! commands test without a clock or a terminal; the binary passes the system clock.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use footfall::SiteId;
use jiff::Timestamp;

use crate::sites::parse_sites_file;
use crate::trust::credential::{self, Credential};
use crate::trust::{Keyring, KeysDocument, LiveStatus, TrustRecord, TrustSettings};

/// The `trust` subcommands.
#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Make a new Ed25519 issuer key: writes the private key file (mode 0600, never
    /// overwriting) and prints its key id and public key.
    Keygen {
        /// Where to write the private key.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print a signed credential (JSON) for a site, from flags or from a sites file.
    Issue(Box<IssueArgs>),
    /// Check a credential offline against a saved `/.well-known/footfall-trust-keys`
    /// document; prints the payload and its status, fails on any alteration.
    Verify {
        /// The saved keys document (JSON).
        #[arg(long)]
        keys: PathBuf,
        /// The credential file (JSON, as served at `/trust/{site}.json`).
        credential: PathBuf,
        /// Also fail (exit status 1) unless the credential's status now is `valid`.
        #[arg(long)]
        require_valid: bool,
    },
}

/// Flags of `footfall trust issue`.
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// The private key file (from `footfall trust keygen`).
    #[arg(long)]
    pub key: PathBuf,
    /// The site id.
    #[arg(long)]
    pub site: String,
    /// Take the record from this sites file's `trust` table of `--site`, instead of flags.
    #[arg(long, conflicts_with_all = ["issuer", "certificate", "hostnames", "level", "issued", "expires", "status", "site_name", "time_zone"])]
    pub sites_file: Option<PathBuf>,
    /// The site's name.
    #[arg(long, default_value = "")]
    pub site_name: String,
    /// The issuer's name.
    #[arg(long)]
    pub issuer: Option<String>,
    /// The certificate id.
    #[arg(long)]
    pub certificate: Option<String>,
    /// A certified hostname (repeat for several).
    #[arg(long = "hostname")]
    pub hostnames: Vec<String>,
    /// The level.
    #[arg(long, default_value = "")]
    pub level: String,
    /// Start of validity, RFC 3339 or YYYY-MM-DD (default: now).
    #[arg(long)]
    pub issued: Option<String>,
    /// End of validity, RFC 3339 or YYYY-MM-DD (valid through that day).
    #[arg(long)]
    pub expires: Option<String>,
    /// `valid`, `suspended` or `revoked`.
    #[arg(long, default_value = "valid")]
    pub status: String,
    /// The time zone that places plain dates.
    #[arg(long, default_value = footfall::rules::DEFAULT_TIME_ZONE)]
    pub time_zone: String,
}

/// Runs one command at time `now`, writing its report to `out`.
pub fn run(command: &TrustCommand, now: Timestamp, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        TrustCommand::Keygen { out: path } => keygen(path, out),
        TrustCommand::Issue(args) => issue(args, now, out),
        TrustCommand::Verify {
            keys,
            credential,
            require_valid,
        } => verify(keys, credential, *require_valid, now, out),
    }
}

fn keygen(path: &Path, out: &mut dyn Write) -> anyhow::Result<()> {
    let keyring = Keyring::generate()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Created owner-only: the secret is never readable by others, not even briefly.
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| {
        format!(
            "cannot create {} (an existing key is never overwritten)",
            path.display()
        )
    })?;
    file.write_all(keyring.to_key_file().as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    writeln!(out, "key id: {}", keyring.key_id())?;
    writeln!(out, "public key: {}", keyring.public_key_base64())?;
    writeln!(out, "keys document:")?;
    writeln!(
        out,
        "{}",
        serde_json::to_string_pretty(&keyring.keys_document())?
    )?;
    Ok(())
}

fn issue(args: &IssueArgs, now: Timestamp, out: &mut dyn Write) -> anyhow::Result<()> {
    let keyring = Keyring::load(&args.key)?;
    let site_id = SiteId::new(&args.site).map_err(|e| anyhow::anyhow!("--site: {e}"))?;
    let (site_name, record) = match &args.sites_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let sites =
                parse_sites_file(&text).with_context(|| format!("in {}", path.display()))?;
            let site = sites
                .into_iter()
                .find(|site| site.id == site_id)
                .with_context(|| format!("{} lists no site {site_id}", path.display()))?;
            let Some(Ok(record)) = site.trust_record() else {
                bail!("site {site_id} in {} has no trust table", path.display());
            };
            (site.settings.name, record)
        }
        None => {
            let required = |value: &Option<String>, flag: &str| {
                value
                    .clone()
                    .with_context(|| format!("{flag} is required (or use --sites-file)"))
            };
            let settings = TrustSettings {
                issuer: required(&args.issuer, "--issuer")?,
                certificate_id: required(&args.certificate, "--certificate")?,
                hostnames: args.hostnames.clone(),
                level: args.level.clone(),
                issued: args.issued.clone().unwrap_or_else(|| now.to_string()),
                expires: required(&args.expires, "--expires")?,
                status: args.status.clone(),
                tinnhiemmang: None,
            };
            let record = TrustRecord::from_settings(&settings, &args.time_zone, "trust")
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            (args.site_name.clone(), record)
        }
    };
    let credential = credential::issue(site_id.as_str(), &site_name, &record, &keyring);
    write!(out, "{}", credential::to_document(&credential))?;
    Ok(())
}

fn verify(
    keys: &Path,
    credential_path: &Path,
    require_valid: bool,
    now: Timestamp,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let keys_text =
        std::fs::read_to_string(keys).with_context(|| format!("reading {}", keys.display()))?;
    let keys = KeysDocument::from_json(&keys_text)?;
    let text = std::fs::read_to_string(credential_path)
        .with_context(|| format!("reading {}", credential_path.display()))?;
    let credential: Credential = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a footfall trust credential",
            credential_path.display()
        )
    })?;
    let verified = credential::verify(&credential, &keys)
        .with_context(|| format!("{}: verification FAILED", credential_path.display()))?;
    let payload = &verified.payload;
    let status_now = payload
        .status_at(now)
        .context("the credential's status is unknown")?;
    writeln!(out, "signature: valid (Ed25519, key {})", credential.key_id)?;
    writeln!(out, "fingerprint: sha256:{}", verified.fingerprint)?;
    writeln!(out, "status set by the issuer: {}", payload.status)?;
    writeln!(out, "status now ({now}): {}", status_now.name())?;
    writeln!(out, "payload:")?;
    writeln!(out, "{}", serde_json::to_string_pretty(payload)?)?;
    if require_valid && status_now != LiveStatus::Valid {
        bail!(
            "the credential is authentic but its status now is {}",
            status_now.name()
        );
    }
    Ok(())
}
