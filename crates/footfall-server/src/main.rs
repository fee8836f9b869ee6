//! The `footfall` binary: parses the command line and hands over to the library.

use std::io::{self, IsTerminal};

use anyhow::Context;
use clap::{Parser, Subcommand};
use footfall_server::cli;
use footfall_server::cli::admin_token::AdminTokenCommand;
use footfall_server::cli::healthcheck::HealthcheckArgs;
use footfall_server::cli::import_history::ImportHistoryArgs;
use footfall_server::cli::migrate::MigrateArgs;
use footfall_server::cli::sketch::SketchCommand;
use footfall_server::cli::trust::TrustCommand;
use footfall_server::config::{LogFormat, ServeArgs};

/// mimalloc: a request allocates many small, short-lived blocks (headers, the hit's JSON,
/// futures), and this allocator serves them in about half the instructions of glibc's
/// (9 % fewer for a whole hit). Built without transparent huge pages (`no_thp`): on a
/// kernel that grants them on request, mimalloc asked for them on its arenas, and 2 MiB
/// pages made the service's RSS some 30 MiB larger at the same CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// footfall: visitor counters and trust badges for web sites.
#[derive(Debug, Parser)]
#[command(name = "footfall", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service: the public listener (hits, counts, widgets) and the internal one
    /// (metrics, health, admin API).
    Serve(Box<ServeArgs>),
    /// Copy every site, setting, salt and counter from one store to another (embedded to
    /// Redis when a site outgrows one machine, and back). Idempotent and resumable.
    Migrate(MigrateArgs),
    /// Inspect, count and update Redis HyperLogLog files (raw `GET` output).
    #[command(subcommand)]
    Sketch(SketchCommand),
    /// Trust credentials: make an issuer key, issue a signed credential, verify one
    /// offline against the published keys.
    #[command(subcommand)]
    Trust(TrustCommand),
    /// Ask a running service's internal listener whether it is ready (`/readyz`) or alive
    /// (`--live`, `/livez`): exit 0 on 200, else 1 with a one-line reason. For container
    /// health checks, without curl.
    Healthcheck(HealthcheckArgs),
    /// Admin tokens: make one for some sites (`new --site caukee`) or an operator
    /// (`new --operator`), printed once, with the tokens file entry holding its digest.
    #[command(subcommand)]
    AdminToken(AdminTokenCommand),
    /// Import an earlier counter's daily figures (CSV date,pageviews,visits,visitors, or
    /// the history's JSON) into a site's history through the admin API: idempotent,
    /// audited, history only (the all-time total stays baseline + live).
    ImportHistory(ImportHistoryArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Migrate(args) => migrate(&args),
        Command::Sketch(command) => {
            cli::sketch::run(&command, io::stdin().lock(), &mut io::stdout().lock())?;
            Ok(())
        }
        Command::Trust(command) => {
            use footfall::clock::Clock;
            cli::trust::run(
                &command,
                footfall::clock::SystemClock.now(),
                &mut io::stdout().lock(),
            )
        }
        Command::Healthcheck(args) => healthcheck(&args),
        Command::AdminToken(command) => {
            cli::admin_token::run(&command, &mut io::stdout().lock(), &mut io::stderr().lock())
        }
        Command::ImportHistory(args) => {
            print!("{}", args.run()?);
            Ok(())
        }
    }
}

fn healthcheck(args: &HealthcheckArgs) -> anyhow::Result<()> {
    match args.run() {
        Ok(summary) => {
            println!("{summary}");
            Ok(())
        }
        Err(reason) => {
            eprintln!("footfall healthcheck: {reason}");
            std::process::exit(1);
        }
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.validate()?;
    init_logging(config.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        footfall_server::service::run(config, shutdown_signal(), |_| {}).await?;
        Ok(())
    })
}

fn migrate(args: &MigrateArgs) -> anyhow::Result<()> {
    init_logging(LogFormat::Text);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    if args.upgrade_layout.is_some() {
        let done = runtime.block_on(cli::migrate::upgrade_layout(args))?;
        println!(
            "upgraded {} sites to one record per site and day ({} first-layout keys removed where present)",
            done.sites, done.legacy_keys
        );
        return Ok(());
    }
    let report = runtime.block_on(cli::migrate::run(args, |report| {
        if let Some(cursor) = &report.last_cursor {
            tracing::info!(pages = report.pages, entries = report.entries(), resume_with = %cursor.0, "page copied");
        }
    }))?;
    println!("{}", cli::migrate::summary(&report));
    Ok(())
}

/// Logs to standard error in `format`. Colour codes only on a terminal (and not with
/// `NO_COLOR` set): in a file or a journal they are noise that breaks searching.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FOOTFALL_LOG")
        .unwrap_or_else(|_| "info".into());
    let terminal = io::stderr().is_terminal();
    let colour = terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(colour);
    if format.json(terminal) {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
