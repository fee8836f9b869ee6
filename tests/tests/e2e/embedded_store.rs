//! The embedded store against real processes: `kill -9` mid-write loses nothing that was
//! acknowledged, a clean exit and reopen keeps everything, and a second process on the
//! same directory is refused with a clear error.
//!
//! The writer is `tests/src/bin/embedded-writer.rs`: it prints `acked <n_hits_total>`
//! after each committed batch of `BATCH_SIZE` hits, each hit from a new visitor.

use std::io::{BufRead, BufReader, Read as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use footfall::counter;
use footfall::store::{EmbeddedStore, ScanCursor, Store, StoreError};
use footfall::{CountingRules, Metric, SiteId, Window};
use jiff::Timestamp;

/// Generous for a loaded 2-core machine: a batch commits in milliseconds.
const ACK_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `embedded-writer`, killed and reaped on drop so a failing test leaves no
/// process behind.
struct Writer {
    child: Child,
    acks: Receiver<u64>,
}

impl Writer {
    fn spawn(dir: &Path, batch_size: u64, max_batches: u64) -> Writer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_embedded-writer"))
            .arg(dir)
            .arg(batch_size.to_string())
            .arg(max_batches.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn embedded-writer");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, acks) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let n = line
                    .strip_prefix("acked ")
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or_else(|| panic!("unexpected writer output {line:?}"));
                if sender.send(n).is_err() {
                    return;
                }
            }
        });
        Writer { child, acks }
    }

    /// Waits until at least `n_hits` are acknowledged; returns the latest count.
    fn wait_for_acked(&mut self, n_hits: u64) -> u64 {
        let deadline = Instant::now() + ACK_TIMEOUT;
        let mut last = 0;
        while last < n_hits {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.acks.recv_timeout(left) {
                Ok(n) => last = n,
                Err(RecvTimeoutError::Timeout) => panic!("only {last} hits acknowledged in time"),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("the writer stopped at {last} hits: {}", self.stderr())
                }
            }
        }
        last
    }

    /// Sends SIGKILL, reaps the process, and returns the last count it acknowledged
    /// (lines already in the pipe were acknowledged before the kill).
    fn kill_9(mut self, last_seen: u64) -> u64 {
        self.child.kill().expect("SIGKILL the writer");
        self.child.wait().expect("reap the writer");
        let mut last = last_seen;
        loop {
            match self.acks.recv_timeout(ACK_TIMEOUT) {
                Ok(n) => last = n,
                Err(RecvTimeoutError::Disconnected) => return last,
                Err(RecvTimeoutError::Timeout) => panic!("the writer's stdout did not close"),
            }
        }
    }

    fn stderr(&mut self) -> String {
        let mut text = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = stderr.read_to_string(&mut text);
        }
        text
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn writer_site() -> SiteId {
    SiteId::new("writer").expect("valid site id")
}

/// The writer's hits are at 03:00:00Z plus one second per batch; read a little later.
fn read_time() -> Timestamp {
    "2026-11-30T06:00:00Z".parse().expect("valid timestamp")
}

/// All-time pageviews and visits of the writer's site, after checking that every entry
/// in the file decodes.
async fn totals(store: &EmbeddedStore) -> (u64, u64) {
    store.ping().await.expect("ping");
    let mut cursor = ScanCursor::default();
    loop {
        let (_, next) = store
            .scan(&cursor, 1_000, read_time())
            .await
            .expect("every entry decodes");
        match next {
            Some(next) => cursor = next,
            None => break,
        }
    }
    let snapshot = counter::snapshot(
        store,
        &writer_site(),
        &CountingRules::default(),
        read_time(),
    )
    .await
    .expect("snapshot");
    (
        snapshot.value(Window::Total, Metric::Pageviews),
        snapshot.value(Window::Total, Metric::Visits),
    )
}

#[tokio::test]
async fn kill_9_loses_no_acknowledged_batch() {
    const BATCH: u64 = 200;
    let dir = tempfile::tempdir().unwrap();
    let mut writer = Writer::spawn(dir.path(), BATCH, 1_000_000);
    let seen = writer.wait_for_acked(8 * BATCH);
    let acked = writer.kill_9(seen);

    let store = EmbeddedStore::open(dir.path()).expect("the file opens cleanly after kill -9");
    let (pageviews, visits) = totals(&store).await;
    assert!(
        pageviews >= acked,
        "acknowledged {acked} hits but only {pageviews} are stored"
    );
    assert!(
        pageviews <= acked + BATCH,
        "{pageviews} stored is more than {acked} acknowledged plus the batch in flight"
    );
    // A batch commits whole or not at all: every hit is a new visitor, so each committed
    // batch adds BATCH pageviews and BATCH visits together.
    assert_eq!(pageviews % BATCH, 0, "a partial batch was stored");
    assert_eq!(visits, pageviews);
    // The store still takes writes.
    store.purge_expired(read_time()).await.expect("purge");
}

#[tokio::test]
async fn a_finished_writer_leaves_everything_for_the_next_process() {
    let dir = tempfile::tempdir().unwrap();
    for run in 1..=2u64 {
        let mut writer = Writer::spawn(dir.path(), 50, 3);
        assert_eq!(writer.wait_for_acked(150), 150);
        let status = writer.child.wait().expect("the writer exits");
        assert!(status.success(), "run {run}: {status}: {}", writer.stderr());
        let store = EmbeddedStore::open(dir.path()).expect("reopen");
        // The second run replays the same visitors at the same instants: pageviews add
        // up, visits do not (their visits are still open).
        assert_eq!(totals(&store).await, (150 * run, 150));
    }
}

#[tokio::test]
async fn a_second_process_is_refused_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(footfall::store::embedded::FILE_NAME);

    // This process holds the store: the writer cannot open it.
    let held = EmbeddedStore::open(dir.path()).unwrap();
    let mut refused = Writer::spawn(dir.path(), 10, 1);
    let status = refused.child.wait().expect("the writer exits");
    let stderr = refused.stderr();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("locked"), "{stderr}");
    assert!(stderr.contains(&file.display().to_string()), "{stderr}");
    drop(held);

    // The writer holds it: this process cannot, until the writer is gone.
    let mut writer = Writer::spawn(dir.path(), 10, 1_000_000);
    let seen = writer.wait_for_acked(10);
    let error = EmbeddedStore::open(dir.path()).unwrap_err();
    assert!(
        matches!(&error, StoreError::Locked(message) if message.contains(&file.display().to_string())),
        "{error:?}"
    );
    let acked = writer.kill_9(seen);
    let store = EmbeddedStore::open(dir.path()).expect("the lock dies with the process");
    let (pageviews, _) = totals(&store).await;
    assert!(pageviews >= acked, "{pageviews} < {acked}");
}
