//! `footfall migrate`: copies every site, setting, salt and counter between two stores;
//! with `--upgrade-layout`, brings one store to the current layout in place.

use clap::Args;
use footfall::clock::{Clock, SystemClock};
use footfall::migrate::{self, CopyOptions, MigrationReport};
use footfall::store::{AnyStore, ScanCursor, StoreOptions};

use crate::config::{ConfigError, RedisTlsArgs, uses_tls};

/// Flags of `footfall migrate`.
#[derive(Clone, Debug, Args)]
pub struct MigrateArgs {
    /// Source store: a directory (embedded), `file:PATH`, `memory:`, or a Redis URL.
    #[arg(long, required_unless_present = "upgrade_layout", default_value = "")]
    pub from: String,
    /// Target store, in the same forms. Entries are written as they are in the source,
    /// replacing what the target has under the same keys.
    #[arg(long, required_unless_present = "upgrade_layout", default_value = "")]
    pub to: String,
    /// Instead of copying: bring the registered sites of this store (same forms) to the
    /// current layout, one record per site and day, carrying every all-time total over
    /// and deleting the week, month and all-time keys of the first layout. Idempotent;
    /// `footfall serve` also does it once at start-up.
    #[arg(long, conflicts_with_all = ["from", "to", "start"], value_name = "STORE")]
    pub upgrade_layout: Option<String>,
    /// Entries per page; each page is one commit or pipeline on the target.
    #[arg(long, default_value_t = 1000)]
    pub page_size: usize,
    /// Resume after this cursor (printed after every page of an interrupted run).
    #[arg(long)]
    pub start: Option<String>,
    /// Certificates for whichever of the two stores is Redis over TLS (both, if both
    /// are: a CA file may hold several CAs).
    #[command(flatten)]
    pub redis_tls: RedisTlsArgs,
}

/// Why a migration failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// A store could not be opened.
    #[error("cannot open {which} store {location:?}: {source}")]
    Open {
        /// `source` or `target`.
        which: &'static str,
        /// Where (a URL's password replaced).
        location: String,
        /// Why.
        source: footfall::store::StoreError,
    },
    /// Source and target are the same.
    #[error("--from and --to name the same store")]
    SameStore,
    /// The store's site registry could not be read.
    #[error("the store's site registry ({key}): {0}", key = footfall::keys::registry())]
    Registry(String),
    /// The layout upgrade failed (it is safe to run again).
    #[error("layout upgrade failed (run it again when the store is back): {source}")]
    Upgrade {
        /// Why.
        source: footfall::Error,
    },
    /// A flag is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Copying failed; the report says how far it got.
    #[error("copy failed after {pages} pages (resume with --start {cursor:?}): {source}")]
    Copy {
        /// Pages copied.
        pages: u64,
        /// Where to resume.
        cursor: String,
        /// Why.
        source: footfall::Error,
    },
}

/// Runs the migration and returns its report; `progress` sees each page's report.
pub async fn run(
    args: &MigrateArgs,
    mut progress: impl FnMut(&MigrationReport),
) -> Result<MigrationReport, MigrateError> {
    if args.from.trim() == args.to.trim() {
        return Err(MigrateError::SameStore);
    }
    let redis_tls = args.redis_tls.validate(&[&args.from, &args.to])?;
    let open = |which: &'static str, location: String| {
        // The certificates go to the stores over TLS only; another store would refuse them.
        let options = StoreOptions {
            redis_tls: if uses_tls(&location) {
                redis_tls.clone()
            } else {
                Default::default()
            },
        };
        async move {
            AnyStore::connect_with(&location, &options)
                .await
                .map_err(|source| MigrateError::Open {
                    which,
                    location: footfall::store::printable_location(&location),
                    source,
                })
        }
    };
    let from = open("source", args.from.clone()).await?;
    let to = open("target", args.to.clone()).await?;
    let options = CopyOptions {
        page_size: args.page_size.max(1),
        start: ScanCursor(args.start.clone().unwrap_or_default()),
        max_pages: None,
    };
    let mut last_cursor = options.start.0.clone();
    let mut pages = 0;
    let result = migrate::copy_with_progress(&from, &to, &options, SystemClock.now(), |report| {
        pages = report.pages;
        if let Some(cursor) = &report.last_cursor {
            last_cursor.clone_from(&cursor.0);
        }
        progress(report);
    })
    .await;
    result.map_err(|source| MigrateError::Copy {
        pages,
        cursor: last_cursor,
        source,
    })
}

/// `footfall migrate --upgrade-layout STORE`: upgrades every site of the store's
/// registry (see [`crate::layout`]), whether or not the store says it was done before.
pub async fn upgrade_layout(args: &MigrateArgs) -> Result<crate::layout::Upgraded, MigrateError> {
    let location = args.upgrade_layout.clone().unwrap_or_default();
    let redis_tls = args.redis_tls.validate(&[&location])?;
    let store = AnyStore::connect_with(&location, &StoreOptions { redis_tls })
        .await
        .map_err(|source| MigrateError::Open {
            which: "upgraded",
            location: footfall::store::printable_location(&location),
            source,
        })?;
    let now = SystemClock.now();
    let registry = footfall::store::Store::get(&store, &footfall::keys::registry(), now)
        .await
        .map_err(|source| MigrateError::Upgrade {
            source: source.into(),
        })?;
    let mut sites = Vec::new();
    if let Some(bytes) = registry {
        let document =
            crate::registry::RegistryDocument::parse(&bytes).map_err(MigrateError::Registry)?;
        for (id, settings) in document.sites {
            let site = crate::sites::Site::from_settings(settings, &format!("sites.{id}"))
                .map_err(|error| MigrateError::Registry(error.to_string()))?;
            sites.push(std::sync::Arc::new(site));
        }
    }
    crate::layout::upgrade(&store, &sites, true, now)
        .await
        .map_err(|source| MigrateError::Upgrade { source })
}

/// The one-line summary printed at the end.
pub fn summary(report: &MigrationReport) -> String {
    format!(
        "copied {} counters, {} sketches, {} sets and {} other values of {} sites in {} pages ({} expired entries skipped)",
        report.counters,
        report.sketches,
        report.sets,
        report.bytes,
        report.sites.len(),
        report.pages,
        report.skipped_expired
    )
}
