//! `footfall import-history`: sends an earlier counter's daily figures (CSV or the
//! history's JSON) to a running service's admin API, `PUT
//! /admin/v1/sites/{site}/history`, one local year per request so a file of any length
//! fits the internal listener's body limit.
//!
//! The file is checked here first with the server's own parser (so a mistake is reported
//! before anything is sent), then every year is sent as a dry run, and only when all of
//! them pass is each sent for real: days with live counts, unsettled days or a wrong site
//! stop the import before it writes anything. The import is idempotent, so running it
//! again after an interruption finishes the job. Plain HTTP only: the internal listener
//! does not speak TLS, reach it over loopback, a private network or an SSH tunnel.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use http::{Method, Request, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::imported::{self, ImportedDay, ParsedImport};

/// The largest file read: ten years of days take well under 1 MB in either format.
const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// The largest answer read.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// Flags of `footfall import-history`.
#[derive(Clone, Debug, Args)]
pub struct ImportHistoryArgs {
    /// The site whose history this is.
    #[arg(long)]
    pub site: String,
    /// The file: CSV with the header row date,pageviews,visits,visitors, or the JSON of
    /// `GET /api/v1/sites/{site}/history`; `-` reads standard input.
    #[arg(long)]
    pub file: PathBuf,
    /// Show the imported figures on days that already have live counts (refused
    /// otherwise; the live counts stay in the all-time total).
    #[arg(long)]
    pub replace: bool,
    /// Check everything and say what would change; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The service's internal listener.
    #[arg(
        long,
        env = "FOOTFALL_ADMIN_URL",
        default_value = "http://127.0.0.1:9464"
    )]
    pub server: String,
    /// A file holding an admin token (its first line), so the token never appears in
    /// the process list or the shell history.
    #[arg(long, env = "FOOTFALL_ADMIN_TOKEN_FILE")]
    pub token_file: PathBuf,
    /// Seconds each request may take.
    #[arg(long = "timeout", default_value_t = 30)]
    pub timeout_secs: u64,
}

impl ImportHistoryArgs {
    /// Runs the import on a small runtime of its own; `Ok` holds the report to print.
    pub fn run(&self) -> anyhow::Result<String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(self.run_async())
    }

    async fn run_async(&self) -> anyhow::Result<String> {
        let server = Server::parse(&self.server, self.token()?, self.timeout_secs)?;
        footfall::SiteId::new(&self.site)
            .map_err(|e| anyhow::anyhow!("--site {:?}: {e}", self.site))?;
        let parsed = self.read_file()?;
        let years = by_year(&parsed);
        let path = format!("/admin/v1/sites/{}/history", self.site);
        let mut report = format!(
            "{}: {} day(s) from {} to {} in {} year(s)\n",
            self.site,
            parsed.days.len(),
            parsed
                .days
                .first()
                .map_or_else(String::new, |d| d.date.to_string()),
            parsed
                .days
                .last()
                .map_or_else(String::new, |d| d.date.to_string()),
            years.len()
        );
        let mut passes = vec![true];
        if !self.dry_run {
            passes.push(false);
        }
        let mut last = Value::Null;
        let mut totals = [0u64; 4];
        for dry_run in passes {
            let query = format!("?replace={}&dry_run={dry_run}", self.replace);
            for (year, body) in &years {
                let answer = server
                    .put_json(&format!("{path}{query}"), body)
                    .await
                    .map_err(|e| anyhow::anyhow!("{year}: {e}; nothing more was sent"))?;
                if dry_run == self.dry_run {
                    report.push_str(&format!(
                        "{year}: {}\n",
                        answer["message"].as_str().unwrap_or("")
                    ));
                    for (total, name) in
                        totals
                            .iter_mut()
                            .zip(["added", "replaced", "replaced_live", "unchanged"])
                    {
                        *total += answer[name].as_u64().unwrap_or(0);
                    }
                }
                last = answer;
            }
        }
        let [added, replaced, replaced_live, unchanged] = totals;
        let verb = if self.dry_run { "would be" } else { "were" };
        report.push_str(&format!(
            "{} day(s) {verb} added, {replaced} replaced ({replaced_live} hiding live counts), \
             {unchanged} unchanged{}\n",
            added,
            if added + replaced == 0 {
                ": nothing changed"
            } else {
                ""
            }
        ));
        report.push_str(&format!(
            "all imported days of {}: {} ({} pageviews, {} visits, {} visitors); baseline {}\n",
            self.site,
            last["imported_total"]["days"],
            last["imported_total"]["pageviews"],
            last["imported_total"]["visits"],
            last["imported_total"]["visitors"],
            last["baseline"]
        ));
        for warning in last["warnings"].as_array().into_iter().flatten() {
            report.push_str(&format!("warning: {}\n", warning.as_str().unwrap_or("")));
        }
        Ok(report)
    }

    fn token(&self) -> anyhow::Result<String> {
        let text = std::fs::read_to_string(&self.token_file)
            .map_err(|e| anyhow::anyhow!("--token-file {}: {e}", self.token_file.display()))?;
        let token = text.lines().next().unwrap_or("").trim().to_owned();
        if token.is_empty() {
            anyhow::bail!(
                "--token-file {}: the first line is empty",
                self.token_file.display()
            );
        }
        Ok(token)
    }

    fn read_file(&self) -> anyhow::Result<ParsedImport> {
        let name = self.file.display();
        let mut bytes = Vec::new();
        let reader: Box<dyn std::io::Read> = if self.file.as_os_str() == "-" {
            Box::new(std::io::stdin())
        } else {
            Box::new(std::fs::File::open(&self.file).map_err(|e| anyhow::anyhow!("{name}: {e}"))?)
        };
        reader
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            anyhow::bail!("{name}: larger than {MAX_FILE_BYTES} bytes");
        }
        let json = bytes
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'{' || *b == b'[');
        let parsed = if json {
            imported::parse_json(&bytes)
        } else {
            imported::parse_csv(&bytes)
        };
        let parsed = parsed.map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        if let Some(other) = parsed.site.as_deref().filter(|s| *s != self.site) {
            anyhow::bail!("{name} is the history of {other:?}, not of {:?}", self.site);
        }
        Ok(parsed)
    }
}

/// The days of each local year as the JSON body of one request (with the document's
/// time zone, which the service checks against the site's).
fn by_year(parsed: &ParsedImport) -> BTreeMap<i16, Value> {
    let mut years: BTreeMap<i16, Vec<&ImportedDay>> = BTreeMap::new();
    for day in &parsed.days {
        years.entry(day.date.year()).or_default().push(day);
    }
    years
        .into_iter()
        .map(|(year, days)| {
            let days: Vec<Value> = days
                .iter()
                .map(|d| {
                    json!({
                        "date": d.date,
                        "pageviews": d.counts.pageviews,
                        "visits": d.counts.visits,
                        "visitors": d.counts.visitors,
                    })
                })
                .collect();
            let mut body = json!({ "days": days });
            if let Some(zone) = &parsed.time_zone {
                body["time_zone"] = json!(zone);
            }
            (year, body)
        })
        .collect()
}

/// The admin API of one service.
struct Server {
    authority: http::uri::Authority,
    base_path: String,
    token: String,
    timeout: Duration,
}

impl Server {
    fn parse(url: &str, token: String, timeout_secs: u64) -> anyhow::Result<Server> {
        let uri: Uri = url
            .parse()
            .map_err(|e| anyhow::anyhow!("--server {url:?}: not a URL: {e}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => anyhow::bail!(
                "--server {url:?}: the internal listener speaks plain HTTP; reach it over \
                 loopback, a private network or an SSH tunnel"
            ),
            _ => anyhow::bail!("--server {url:?}: expected http://host:port"),
        }
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("--server {url:?}: no host"))?;
        if timeout_secs == 0 {
            anyhow::bail!("--timeout: must be greater than 0");
        }
        Ok(Server {
            authority,
            base_path: uri.path().trim_end_matches('/').to_owned(),
            token,
            timeout: Duration::from_secs(timeout_secs),
        })
    }

    /// `PUT`s `body` as JSON; the answer's JSON on 200, else the service's message.
    async fn put_json(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        tokio::time::timeout(self.timeout, self.exchange(path, body))
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "no answer from {} within {:?}",
                    self.authority,
                    self.timeout
                )
            })?
    }

    async fn exchange(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let address = format!(
            "{}:{}",
            self.authority.host(),
            self.authority.port_u16().unwrap_or(80)
        );
        let stream = TcpStream::connect(&address)
            .await
            .map_err(|e| anyhow::anyhow!("connecting to {address}: {e}"))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let request = Request::builder()
            .method(Method::PUT)
            .uri(format!("{}{path}", self.base_path))
            .header(header::HOST, self.authority.as_str())
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(serde_json::to_vec(body)?)))?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let bytes = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("reading the answer: {e}"))?
            .to_bytes();
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(answer);
        }
        let message = answer["error"]["message"].as_str().map_or_else(
            || String::from_utf8_lossy(&bytes).into_owned(),
            str::to_owned,
        );
        anyhow::bail!("the service answered {status}: {message}")
    }
}
