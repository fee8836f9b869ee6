//! Records batches of hits into an embedded store until killed (or until `MAX_BATCHES`),
//! printing `acked <n_hits_total>` after each batch the store acknowledged.
//!
//! Usage: `embedded-writer DIR BATCH_SIZE MAX_BATCHES`
//!
//! The end-to-end tests `kill -9` it mid-run and check that every acknowledged hit is in
//! the file. Hits are pageviews of the site `writer`, each from a distinct visitor, at
//! fixed instants one second apart, so the count is exact and runs are reproducible.
//! Exit status 2 with a message on stderr when the store cannot be opened (e.g. it is
//! locked by another process).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use footfall::counter::{self, Hit};
use footfall::identity::VisitorId;
use footfall::store::EmbeddedStore;
use footfall::store::conformance::fixtures;
use footfall::{CountingRules, SiteId};
use jiff::{SignedDuration, Timestamp};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, batch_size, max_batches] = args.as_slice() else {
        eprintln!("usage: embedded-writer DIR BATCH_SIZE MAX_BATCHES");
        return ExitCode::from(64);
    };
    let (Ok(batch_size), Ok(max_batches)) = (batch_size.parse::<u64>(), max_batches.parse::<u64>())
    else {
        eprintln!("BATCH_SIZE and MAX_BATCHES are numbers");
        return ExitCode::from(64);
    };
    let store = match EmbeddedStore::open(&PathBuf::from(dir)) {
        Ok(store) => store,
        Err(error) => {
            eprintln!("embedded-writer: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    match runtime.block_on(write_batches(&store, batch_size, max_batches)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("embedded-writer: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn write_batches(
    store: &EmbeddedStore,
    batch_size: u64,
    max_batches: u64,
) -> Result<(), footfall::Error> {
    let site = SiteId::new("writer").expect("valid site id");
    let rules = CountingRules::default();
    let start: Timestamp = "2026-11-30T03:00:00Z".parse().expect("valid timestamp");
    let mut stdout = std::io::stdout().lock();
    let mut n_hits_total = 0u64;
    for batch_idx in 0..max_batches {
        let at = start + SignedDuration::from_secs(i64::try_from(batch_idx).unwrap_or(i64::MAX));
        let hits: Vec<Hit> = (0..batch_size)
            .map(|hit_idx| {
                let mut id = [0u8; 16];
                id[..8].copy_from_slice(&(n_hits_total + hit_idx).to_le_bytes());
                fixtures::hit(&site, at, VisitorId::from_bytes(id))
            })
            .collect();
        counter::record(store, &hits, |_| Some(&rules), at).await?;
        n_hits_total += batch_size;
        // The line goes out only after the commit returned: it is the acknowledgement.
        if writeln!(stdout, "acked {n_hits_total}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            // The reader went away; nothing more to acknowledge to.
            return Ok(());
        }
    }
    Ok(())
}
