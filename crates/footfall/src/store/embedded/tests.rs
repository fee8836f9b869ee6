use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

use redb::ReadableTableMetadata;

use super::record::{KIND_BYTES, KIND_COUNTER, KIND_SET, KIND_SKETCH, decode_header};
use super::*;
use crate::SiteId;
use crate::keys::{self, Scope};
use crate::sketch::Hll;
use crate::store::conformance::fixtures;
use crate::store::{CounterAdd, SessionTouch, SketchAdd, VisitGroup};
use crate::window::Metric;

/// A store in a fresh temporary directory. The directory is removed right after the open:
/// on Unix the open file lives on until the store is dropped, so nothing is left behind
/// and the checks still run against a real file with a real lock.
fn temp_store() -> EmbeddedStore {
    let dir = tempfile::tempdir().expect("temporary directory");
    EmbeddedStore::open(dir.path()).expect("open a fresh store")
}

crate::store_conformance!(conformance, async { super::temp_store() });

fn at(text: &str) -> Timestamp {
    text.parse().expect("valid timestamp")
}

fn site() -> SiteId {
    SiteId::new("caukee").expect("valid site")
}

fn visitor(n: u32) -> crate::identity::VisitorId {
    let mut bytes = [0u8; 16];
    bytes[..4].copy_from_slice(&n.to_le_bytes());
    crate::identity::VisitorId::from_bytes(bytes)
}

/// Every entry, in key order, by following scan cursors.
async fn scan_all(store: &EmbeddedStore, now: Timestamp) -> Vec<Entry> {
    let mut cursor = ScanCursor::default();
    let mut all = Vec::new();
    loop {
        let (page, next) = store.scan(&cursor, 3, now).await.unwrap();
        all.extend(page);
        match next {
            Some(next) => cursor = next,
            None => return all,
        }
    }
}

/// Rows of the expiry index, for checking that it stays in step with the records.
fn expiry_rows(store: &EmbeddedStore) -> Vec<(i128, String)> {
    let transaction = store.shared.database.begin_read().unwrap();
    let expiry = transaction.open_table(EXPIRY).unwrap();
    expiry
        .iter()
        .unwrap()
        .map(|row| {
            let (key, _) = row.unwrap();
            let (deadline, key) = key.value();
            (deadline, key.to_owned())
        })
        .collect()
}

/// Writes the held records to `entries` (as the next non-apply write would).
fn write_out(store: &EmbeddedStore) {
    write(&store.shared, |_| Ok(())).unwrap();
    assert_eq!(store.shared.pending.read().len(), 0);
}

fn entry_count(store: &EmbeddedStore) -> u64 {
    let transaction = store.shared.database.begin_read().unwrap();
    let entries = transaction.open_table(ENTRIES).unwrap();
    entries.len().unwrap()
}

#[test]
fn records_round_trip() {
    let mut sketch = Hll::new();
    sketch.add(b"a visitor");
    let cases = [
        Record {
            value: Value::Counter(u64::MAX),
            expire_at: None,
        },
        Record {
            value: Value::Counter(0),
            expire_at: Some(Timestamp::MIN),
        },
        Record {
            value: Value::Sketch(Box::new(sketch)),
            expire_at: Some(Timestamp::MAX),
        },
        Record {
            value: Value::Bytes(Vec::new()),
            expire_at: Some(at("2026-11-30T03:00:00.123456789Z")),
        },
        Record {
            value: Value::Set {
                members: vec![[0; 16], [1; 16], [0xff; 16]],
                overflowed: true,
            },
            expire_at: Some(Timestamp::UNIX_EPOCH),
        },
        Record {
            value: Value::Set {
                members: vec![[3; 16]],
                overflowed: false,
            },
            expire_at: None,
        },
    ];
    let key = Key::parse("ff:{caukee}:k").unwrap();
    for record in cases {
        assert_eq!(decode(&key, &encode(&record)).unwrap(), record);
    }
}

#[test]
fn corrupt_records_are_reported_not_panicked_on() {
    for bytes in [
        &b""[..],
        &[KIND_COUNTER],
        &[KIND_COUNTER, 0, 1, 2],
        &[KIND_COUNTER, 2, 0, 0, 0, 0, 0, 0, 0, 0],
        &[KIND_BYTES, 1, 0, 0],
        &[9, 0],
        // Sets: no flag, a bad flag, no members, a ragged member, members out of order or
        // repeated.
        &[KIND_SET, 0],
        &[
            KIND_SET, 0, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        ],
        &[KIND_SET, 0, 0],
        &[KIND_SET, 0, 0, 1, 2, 3],
        &[
            KIND_SET, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1,
            1, 1, 1, 1, 1, 1, 1, 1,
        ],
        &[
            KIND_SET, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
            1, 1, 1, 1, 1, 1, 1, 1,
        ],
    ] {
        let key = Key::parse("ff:{caukee}:pv:t").unwrap();
        let error = decode(&key, bytes).unwrap_err();
        assert!(
            matches!(&error, StoreError::Corrupt { key, .. } if key == "ff:{caukee}:pv:t"),
            "{bytes:?}: {error}"
        );
    }
}

proptest! {
    #[test]
    fn decoding_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode(&Key::parse("ff:{caukee}:k").unwrap(), &bytes);
        let _ = decode_header(&bytes);
    }
}

#[tokio::test]
async fn a_corrupt_record_on_disk_reads_as_corrupt() {
    let store = temp_store();
    let key = keys::metric(&site(), Metric::Pageviews, &Scope::Total);
    write(&store.shared, |tables| {
        tables
            .entries
            .insert(key.as_str(), &[KIND_COUNTER, 0, 1][..])
            .map_err(backend)?;
        Ok(())
    })
    .unwrap();
    let now = at("2026-11-30T03:00:00Z");
    let read = store.read(&[Read::Counter(key.clone())], now).await;
    assert!(matches!(read, Err(StoreError::Corrupt { .. })), "{read:?}");
    let get = store.get(&key, now).await;
    assert!(matches!(get, Err(StoreError::Corrupt { .. })), "{get:?}");
    let scan = store.scan(&ScanCursor::default(), 10, now).await;
    assert!(matches!(scan, Err(StoreError::Corrupt { .. })), "{scan:?}");
    // A corrupt sketch is reported by reads that decode it.
    let sketch = keys::metric(&site(), Metric::Visitors, &Scope::Total);
    write(&store.shared, |tables| {
        tables
            .entries
            .insert(
                sketch.as_str(),
                &[&[KIND_SKETCH, 0][..], b"not a sketch"].concat()[..],
            )
            .map_err(backend)?;
        Ok(())
    })
    .unwrap();
    let read = store.read(&[Read::Cardinality(vec![sketch])], now).await;
    assert!(matches!(read, Err(StoreError::Corrupt { .. })), "{read:?}");
}

#[tokio::test]
async fn a_second_open_of_the_same_directory_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let first = EmbeddedStore::open(dir.path()).unwrap();
    let error = EmbeddedStore::open(dir.path()).unwrap_err();
    let StoreError::Locked(message) = &error else {
        panic!("expected Locked, got {error:?}");
    };
    assert!(
        message.contains(&dir.path().join(FILE_NAME).display().to_string()),
        "{message}"
    );
    // Dropping the first handle releases the lock.
    drop(first);
    EmbeddedStore::open(dir.path()).unwrap();
}

#[tokio::test]
async fn everything_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let now = at("2026-11-30T03:00:00Z");
    let rules = crate::CountingRules::default();
    let hits: Vec<crate::counter::Hit> = (0..40)
        .map(|n| {
            fixtures::hit(
                &site(),
                now - SignedDuration::from_secs(i64::from(n)),
                visitor(n % 7),
            )
        })
        .collect();
    let (before_scan, before_snapshot) = {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        crate::counter::record(&store, &hits, |_| Some(&rules), now)
            .await
            .unwrap();
        store
            .set(&keys::salt(&site(), "2026-11-30"), b"salt", None)
            .await
            .unwrap();
        (
            scan_all(&store, now).await,
            crate::counter::snapshot(&store, &site(), &rules, now)
                .await
                .unwrap(),
        )
    };
    let store = EmbeddedStore::open(dir.path()).unwrap();
    // The snapshot also wrote the site's all-time fold; everything else is as it was.
    let after_scan: Vec<Entry> = scan_all(&store, now)
        .await
        .into_iter()
        .filter(|entry| entry.key != keys::fold(&site()))
        .collect();
    assert_eq!(after_scan, before_scan);
    let after_snapshot = crate::counter::snapshot(&store, &site(), &rules, now)
        .await
        .unwrap();
    assert_eq!(after_snapshot, before_snapshot);
    assert_eq!(
        after_snapshot.value(crate::Window::Total, Metric::Pageviews),
        40
    );
    assert_eq!(
        after_snapshot.value(crate::Window::Total, Metric::Visitors),
        7
    );
}

#[tokio::test]
async fn purge_removes_expired_entries_and_their_index_rows() {
    let store = temp_store();
    let now = at("2026-11-30T03:00:00Z");
    let minutes = |m: i64| now + SignedDuration::from_mins(m);
    let marker = |n: u32| keys::session(&site(), &visitor(n));
    let touch = |n: u32, until: Timestamp| SessionTouch {
        key: marker(n),
        previous_key: None,
        expire_at: until,
    };
    let day = keys::metric(&site(), Metric::Pageviews, &Scope::Total);
    let batch = WriteBatch {
        now,
        counters: vec![CounterAdd {
            key: day.clone(),
            by: 3,
            expire_at: None,
        }],
        sketches: vec![SketchAdd {
            key: keys::online_minute(&site(), crate::calendar::Minute::from_index(1)),
            elements: vec![[1; 16]],
            expire_at: Some(minutes(10)),
        }],
        sets: vec![],
        visits: vec![VisitGroup {
            counters: vec![],
            sessions: vec![touch(1, minutes(30)), touch(2, minutes(30))],
        }],
    };
    store.apply(&batch).await.unwrap();
    // Visitor 1 comes back: its marker's deadline moves, and so must its index row.
    let again = WriteBatch {
        now: minutes(5),
        visits: vec![VisitGroup {
            counters: vec![],
            sessions: vec![touch(1, minutes(35))],
        }],
        ..WriteBatch::default()
    };
    store.apply(&again).await.unwrap();
    // The counter and the sketch are records of the file once written out; the markers
    // are held apart.
    assert_eq!(entry_count(&store), 0, "an apply holds what it changed");
    write_out(&store);
    assert_eq!(entry_count(&store), 2);
    assert_eq!(store.shared.markers.len(), 2);
    assert_eq!(expiry_rows(&store).len(), 1, "one row per expiring entry");

    assert_eq!(store.purge_expired(minutes(9)).await.unwrap(), 0);
    assert_eq!(store.purge_expired(minutes(10)).await.unwrap(), 1);
    assert_eq!(store.purge_expired(minutes(30)).await.unwrap(), 1);
    assert_eq!(
        store.get(&marker(1), minutes(30)).await.unwrap(),
        Some(minutes(35).as_millisecond().to_string().into_bytes()),
        "the refreshed marker survives its old deadline"
    );
    assert_eq!(store.purge_expired(minutes(35)).await.unwrap(), 1);
    assert_eq!(entry_count(&store), 1, "only the undying counter is left");
    assert_eq!(store.shared.markers.len(), 0);
    assert!(expiry_rows(&store).is_empty());

    // Setting a deadline-free value over an expiring one drops its index row; deleting
    // drops both.
    let salt = keys::salt(&site(), "p");
    store.set(&salt, b"a", Some(minutes(60))).await.unwrap();
    store.set(&salt, b"b", None).await.unwrap();
    assert!(expiry_rows(&store).is_empty());
    store.set(&salt, b"c", Some(minutes(60))).await.unwrap();
    store.delete(std::slice::from_ref(&salt)).await.unwrap();
    assert!(expiry_rows(&store).is_empty());
    assert_eq!(entry_count(&store), 1);
}

#[tokio::test]
async fn apply_purges_expired_entries_as_it_goes() {
    let store = temp_store();
    let now = at("2026-11-30T03:00:00Z");
    let minute_sketch = |n: i64, expire_at: Timestamp| SketchAdd {
        key: keys::online_minute(&site(), crate::calendar::Minute::from_index(n)),
        elements: vec![[1; 16]],
        expire_at: Some(expire_at),
    };
    let batch = |now: Timestamp, sketches: Vec<SketchAdd>| WriteBatch {
        now,
        sketches,
        ..WriteBatch::default()
    };
    let deadline = now + SignedDuration::from_mins(30);
    let many = (0..500).map(|n| minute_sketch(n, deadline)).collect();
    store.apply(&batch(now, many)).await.unwrap();
    write_out(&store);
    assert_eq!(entry_count(&store), 500);
    // An hour later one small batch purges up to its size plus the margin, so the 500
    // stale buckets go in two applies without any call to purge_expired.
    let later = now + SignedDuration::from_hours(1);
    let one = |n: i64| {
        vec![minute_sketch(
            10_000 + n,
            later + SignedDuration::from_mins(30),
        )]
    };
    store.apply(&batch(later, one(1))).await.unwrap();
    write_out(&store);
    assert_eq!(entry_count(&store), 500 - 257 + 1);
    store.apply(&batch(later, one(2))).await.unwrap();
    write_out(&store);
    assert_eq!(entry_count(&store), 2);
    assert_eq!(expiry_rows(&store).len(), 2);
}

/// A batch of one page view by each of `visitors` of the site at `now`: each touches its
/// visit marker (30 minutes) and, when it starts a visit, the all-time visits counter.
fn page_views(now: Timestamp, visitors: std::ops::Range<u32>) -> WriteBatch {
    let visits = keys::metric(&site(), Metric::Visits, &Scope::Total);
    WriteBatch {
        now,
        visits: visitors
            .map(|n| VisitGroup {
                counters: vec![(visits.clone(), None)],
                sessions: vec![SessionTouch {
                    key: keys::session(&site(), &visitor(n)),
                    previous_key: None,
                    expire_at: now + SignedDuration::from_mins(30),
                }],
            })
            .collect(),
        ..WriteBatch::default()
    }
}

/// Visit markers changed lately are held in memory and written by flushes (and when the
/// store closes): after a clean restart an open visit goes on.
#[tokio::test]
async fn open_visits_survive_a_clean_restart() {
    let dir = tempfile::tempdir().unwrap();
    let now = at("2026-11-30T03:00:00Z");
    let visits = keys::metric(&site(), Metric::Visits, &Scope::Total);
    let touch = |n: u32| page_views(now, n..n + 1);
    {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(store.apply(&touch(1)).await.unwrap().visits_started, 1);
        // A flush (the upkeep's), then a change after it, kept by the close.
        store.purge_expired(now).await.unwrap();
        assert_eq!(store.apply(&touch(2)).await.unwrap().visits_started, 1);
    }
    let store = EmbeddedStore::open(dir.path()).unwrap();
    for n in [1, 2] {
        assert_eq!(store.apply(&touch(n)).await.unwrap().visits_started, 0);
    }
    assert_eq!(
        store.read(&[Read::Counter(visits)], now).await.unwrap(),
        vec![2]
    );
    // And they come out of a scan in key order, beside the file's records.
    let entries = scan_all(&store, now).await;
    let keys: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(keys, sorted);
    assert_eq!(keys.iter().filter(|k| k.contains(":sess:")).count(), 2);
}

/// A flush writes in transactions of a bounded number of changed markers, a site's
/// changes whole in one: every changed site's chunk is there afterwards, with its
/// markers, and nothing is left to flush.
#[tokio::test]
async fn a_flush_writes_in_bounded_transactions() {
    let store = temp_store();
    let now = at("2026-11-30T03:00:00Z");
    let sites: Vec<SiteId> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|name| SiteId::new(name).unwrap())
        .collect();
    let batch = WriteBatch {
        now,
        visits: sites
            .iter()
            .flat_map(|site| {
                (0..3).map(move |n| VisitGroup {
                    counters: vec![(keys::metric(site, Metric::Visits, &Scope::Total), None)],
                    sessions: vec![SessionTouch {
                        key: keys::session(site, &visitor(n)),
                        previous_key: None,
                        expire_at: now + SignedDuration::from_mins(30),
                    }],
                })
            })
            .collect(),
        ..WriteBatch::default()
    };
    store.apply(&batch).await.unwrap();
    // Four markers a transaction: two sites (six markers) in the first, two in the
    // second, one in the third.
    let report = flush_in_parts(&store.shared, 4, now, false).unwrap();
    assert_eq!(
        report,
        FlushReport {
            written: 15,
            dropped: 0
        }
    );
    assert!(!store.shared.markers.is_dirty());
    assert_eq!(store.shared.markers.bytes(), 0, "nothing changed is held");
    let transaction = store.shared.database.begin_read().unwrap();
    let table = transaction.open_table(markers::VISITS).unwrap();
    for site in &sites {
        let chunk = table
            .get((site.as_str(), [0; 16]))
            .unwrap()
            .expect("a chunk per site");
        assert_eq!(chunk.value().len(), 3 * 24);
    }
    assert_eq!(table.len().unwrap(), 5);
    assert!(
        transaction
            .open_table(markers::MARKERS)
            .unwrap()
            .is_empty()
            .unwrap()
    );
}

/// Past its limit of changed markers, an apply flushes them itself instead of waiting
/// for the upkeep: memory is left with none, and the visits they hold open go on from
/// the file, after a restart too.
#[tokio::test]
async fn an_apply_past_the_limit_flushes_the_markers() {
    let dir = tempfile::tempdir().unwrap();
    let now = at("2026-11-30T03:00:00Z");
    let visits = keys::metric(&site(), Metric::Visits, &Scope::Total);
    let batch = |visitors: std::ops::Range<u32>| page_views(now, visitors);
    {
        let store = EmbeddedStore::open_with(dir.path(), Markers::with_limit(8)).unwrap();
        assert_eq!(store.apply(&batch(0..5)).await.unwrap().visits_started, 5);
        assert!(store.shared.markers.bytes() > 0, "under the limit: held");
        assert_eq!(store.apply(&batch(5..10)).await.unwrap().visits_started, 5);
        assert_eq!(store.shared.markers.bytes(), 0, "past it: flushed");
        assert_eq!(store.shared.markers.len(), 10);
        assert_eq!(store.apply(&batch(0..12)).await.unwrap().visits_started, 2);
    }
    let store = EmbeddedStore::open_with(dir.path(), Markers::with_limit(8)).unwrap();
    assert_eq!(
        store.shared.markers.bytes(),
        0,
        "nothing loaded but what memory needs"
    );
    assert_eq!(store.apply(&batch(0..13)).await.unwrap().visits_started, 1);
    assert_eq!(
        store.read(&[Read::Counter(visits)], now).await.unwrap(),
        vec![13]
    );
}

/// A version 4 file kept a site's markers in one row: opening it moves them into chunks,
/// the visits they hold open go on, and the file says version 5 afterwards.
#[tokio::test]
async fn a_version_4_file_has_its_markers_chunked() {
    let dir = tempfile::tempdir().unwrap();
    let now = at("2026-11-30T03:00:00Z");
    let deadline_ms = (now + SignedDuration::from_mins(30)).as_millisecond();
    let touch = |n: u32| page_views(now, n..n + 1);
    {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let ids: Vec<([u8; 16], i64)> = (0..3)
            .map(|n| {
                let key = keys::session(&site(), &visitor(n));
                (markers::split_key(key.as_str()).unwrap().1, deadline_ms)
            })
            .collect();
        let transaction = store.shared.database.begin_write().unwrap();
        transaction
            .open_table(MARKERS)
            .unwrap()
            .insert(site().as_str(), markers::version_4_row(&ids).as_slice())
            .unwrap();
        transaction
            .open_table(META)
            .unwrap()
            .insert("layout", 4)
            .unwrap();
        transaction.commit().unwrap();
    }
    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(store.shared.markers.bytes(), 0, "moved into chunks at open");
    assert_eq!(store.shared.markers.len(), 3);
    for n in 0..4 {
        let started = store.apply(&touch(n)).await.unwrap().visits_started;
        assert_eq!(started, u64::from(n == 3), "visitor {n}");
    }
    let transaction = store.shared.database.begin_read().unwrap();
    assert!(transaction.open_table(MARKERS).unwrap().is_empty().unwrap());
    let layout = transaction
        .open_table(META)
        .unwrap()
        .get("layout")
        .unwrap()
        .unwrap()
        .value();
    assert_eq!(layout, LAYOUT_VERSION);
}

/// A version 2 file kept markers as records: opening it moves them into the markers
/// table, and the visits they hold open go on.
#[tokio::test]
async fn a_version_2_file_has_its_markers_moved() {
    let dir = tempfile::tempdir().unwrap();
    let now = at("2026-11-30T03:00:00Z");
    let marker = keys::session(&site(), &visitor(7));
    let deadline = now + SignedDuration::from_mins(30);
    {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        write(&store.shared, |tables| {
            tables.put_record(
                &marker,
                &Record {
                    value: Value::Bytes(Vec::new()),
                    expire_at: Some(deadline),
                },
            )?;
            let mut meta = tables.transaction.open_table(META).map_err(backend)?;
            meta.insert("layout", 2).map_err(backend)?;
            Ok(())
        })
        .unwrap();
    }
    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(entry_count(&store), 0, "the record left `entries`");
    assert!(expiry_rows(&store).is_empty());
    assert_eq!(store.get(&marker, now).await.unwrap(), Some(Vec::new()));
    let transaction = store.shared.database.begin_read().unwrap();
    let table = transaction.open_table(markers::MARKERS).unwrap();
    assert!(table.get("caukee").unwrap().is_some(), "flushed at once");
}

#[tokio::test]
async fn a_failed_batch_changes_nothing() {
    let store = temp_store();
    let now = at("2026-11-30T03:00:00Z");
    let counter = keys::metric(&site(), Metric::Pageviews, &Scope::Total);
    let not_a_counter = keys::salt(&site(), "p");
    store.set(&not_a_counter, b"salt", None).await.unwrap();
    let batch = WriteBatch {
        now,
        counters: vec![
            CounterAdd {
                key: counter.clone(),
                by: 1,
                expire_at: None,
            },
            CounterAdd {
                key: not_a_counter.clone(),
                by: 1,
                expire_at: None,
            },
        ],
        ..WriteBatch::default()
    };
    let error = store.apply(&batch).await.unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
    assert_eq!(
        store.read(&[Read::Counter(counter)], now).await.unwrap(),
        vec![0]
    );
}

#[tokio::test]
async fn an_unknown_layout_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        write(&store.shared, |tables| {
            let mut meta = tables.transaction.open_table(META).map_err(backend)?;
            meta.insert("layout", LAYOUT_VERSION + 1).map_err(backend)?;
            Ok(())
        })
        .unwrap();
    }
    let error = EmbeddedStore::open(dir.path()).unwrap_err();
    assert!(
        matches!(&error, StoreError::Config(message)
            if message.contains(&format!("layout version {}", LAYOUT_VERSION + 1))),
        "{error}"
    );
}

#[tokio::test]
async fn a_version_1_file_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let key = keys::metric(&site(), Metric::Pageviews, &Scope::Total);
    {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        store.set(&key, b"41", None).await.unwrap();
        write(&store.shared, |tables| {
            let mut meta = tables.transaction.open_table(META).map_err(backend)?;
            meta.insert("layout", 1).map_err(backend)?;
            Ok(())
        })
        .unwrap();
    }
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let transaction = store.shared.database.begin_read().unwrap();
    let meta = transaction.open_table(META).unwrap();
    assert_eq!(
        meta.get("layout").unwrap().map(|v| v.value()),
        Some(LAYOUT_VERSION)
    );
    assert_eq!(
        store
            .read(&[Read::Counter(key)], at("2026-11-30T03:00:00Z"))
            .await
            .unwrap(),
        vec![41]
    );
}

#[test]
fn outside_a_tokio_runtime_calls_run_inline() {
    let store = temp_store();
    let key = keys::salt(&site(), "p");
    let now = at("2026-11-30T03:00:00Z");
    // With no runtime the work runs inline, so each future is ready on its first poll.
    let poll_once = |future: std::pin::Pin<&mut dyn Future<Output = Result<(), StoreError>>>| {
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        match future.poll(&mut context) {
            std::task::Poll::Ready(result) => result,
            std::task::Poll::Pending => panic!("an inline call was pending"),
        }
    };
    poll_once(std::pin::pin!(store.set(&key, b"v", None))).unwrap();
    poll_once(std::pin::pin!(async {
        assert_eq!(store.get(&key, now).await?, Some(b"v".to_vec()));
        Ok(())
    }))
    .unwrap();
}

/// The records an apply changed are held in memory over `entries`: reads, `get` and a
/// scan see the held value (once), and a later write of another kind writes them out
/// first, so it finds `entries` complete.
#[tokio::test]
async fn held_records_read_over_the_file() {
    let store = temp_store();
    let now = at("2026-11-30T03:00:00Z");
    let key = keys::metric(&site(), Metric::Pageviews, &Scope::Total);
    let add = |by: u64| WriteBatch {
        now,
        counters: vec![CounterAdd {
            key: key.clone(),
            by,
            expire_at: None,
        }],
        ..WriteBatch::default()
    };
    store.apply(&add(1)).await.unwrap();
    write_out(&store);
    store.apply(&add(2)).await.unwrap();
    assert_eq!(store.shared.pending.read().len(), 1);
    assert_eq!(
        store
            .read(&[Read::Counter(key.clone())], now)
            .await
            .unwrap(),
        vec![3]
    );
    assert_eq!(store.get(&key, now).await.unwrap(), Some(b"3".to_vec()));
    let entries = scan_all(&store, now).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].key, key);
    // Deleting it is a write of another kind: the held value goes to the file, then the
    // delete removes it there.
    store.delete(std::slice::from_ref(&key)).await.unwrap();
    assert_eq!(store.shared.pending.read().len(), 0);
    assert_eq!(store.get(&key, now).await.unwrap(), None);
    assert_eq!(entry_count(&store), 0);
}

/// The gauges' figures: open visits, and the held records until they are written out.
#[tokio::test]
async fn what_is_held_in_memory_is_reported() {
    let store = temp_store();
    let now = at("2026-11-30T03:00:00Z");
    assert_eq!(store.held_in_memory(), HeldInMemory::default());
    let visits = keys::metric(&site(), Metric::Visits, &Scope::Total);
    let batch = WriteBatch {
        now,
        visits: vec![VisitGroup {
            counters: vec![(visits, None)],
            sessions: (1..=2)
                .map(|n| SessionTouch {
                    key: keys::session(&site(), &visitor(n)),
                    previous_key: None,
                    expire_at: now + SignedDuration::from_mins(30),
                })
                .collect(),
        }],
        ..WriteBatch::default()
    };
    store.apply(&batch).await.unwrap();
    let held = store.held_in_memory();
    assert_eq!((held.open_visits, held.records), (2, 1), "{held:?}");
    assert!(held.record_bytes > 0);
    write_out(&store);
    let held = store.held_in_memory();
    assert_eq!(
        (held.open_visits, held.records, held.record_bytes),
        (2, 0, 0)
    );
}

/// A `kill -9` between two commits leaves the file as it was at the last one, as a copy
/// taken then does: the batches since the last write-out are only in the journal, and
/// opening the copy replays them into the same records.
#[tokio::test]
async fn a_file_copied_between_commits_replays_its_journal() {
    let dir = tempfile::tempdir().unwrap();
    let copy = tempfile::tempdir().unwrap();
    let now = at("2026-11-30T03:00:00Z");
    let rules = crate::CountingRules::default();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let hits = |from: u32| -> Vec<crate::counter::Hit> {
        (from..from + 30)
            .map(|n| {
                fixtures::hit(
                    &site(),
                    now - SignedDuration::from_secs(i64::from(n)),
                    visitor(n % 50),
                )
            })
            .collect()
    };
    crate::counter::record(&store, &hits(0), |_| Some(&rules), now)
        .await
        .unwrap();
    write_out(&store);
    for round in 1..4 {
        crate::counter::record(&store, &hits(round * 30), |_| Some(&rules), now)
            .await
            .unwrap();
    }
    // A small set overflowing into its sketch across two batches: replayed in order,
    // the members and the spill come out the same.
    let minute = crate::calendar::Minute::from_index(7);
    let set = |elements: Vec<[u8; 16]>| WriteBatch {
        now,
        sets: vec![crate::store::SetAdd {
            key: keys::online_minute_set(&site(), minute),
            elements,
            cap: 4,
            expire_at: Some(now + SignedDuration::from_mins(31)),
            spill: Some(keys::online_minute(&site(), minute)),
        }],
        ..WriteBatch::default()
    };
    store.apply(&set(vec![[1; 16], [2; 16]])).await.unwrap();
    store
        .apply(&set(vec![[3; 16], [4; 16], [5; 16], [6; 16]]))
        .await
        .unwrap();
    let held = store.shared.pending.read().len();
    assert!(held >= 5, "{held} held");
    // Markers are flushed apart (a crash may lose their latest moves, by design).
    let records = |entries: Vec<Entry>| -> Vec<Entry> {
        entries
            .into_iter()
            .filter(|entry| !entry.key.is_visit_marker())
            .collect()
    };
    let expected = records(scan_all(&store, now).await);
    std::fs::copy(dir.path().join(FILE_NAME), copy.path().join(FILE_NAME)).unwrap();
    {
        let database = Database::open(copy.path().join(FILE_NAME)).unwrap();
        let transaction = database.begin_read().unwrap();
        let journal = transaction.open_table(JOURNAL).unwrap();
        assert_eq!(journal.len().unwrap(), 5, "one row per held batch");
    }
    let reopened = EmbeddedStore::open(copy.path()).unwrap();
    assert_eq!(reopened.shared.pending.read().len(), 0);
    assert_eq!(records(scan_all(&reopened, now).await), expected);
    let transaction = reopened.shared.database.begin_read().unwrap();
    assert!(transaction.open_table(JOURNAL).unwrap().is_empty().unwrap());
    assert_eq!(
        reopened
            .read(
                &[Read::SpilledUnion(vec![(
                    keys::online_minute_set(&site(), minute),
                    keys::online_minute(&site(), minute),
                )])],
                now,
            )
            .await
            .unwrap(),
        vec![6]
    );
}

#[test]
fn journal_rows_round_trip() {
    let now = at("2026-11-30T03:00:00Z");
    let minute = crate::calendar::Minute::from_index(3);
    let sketches = vec![SketchAdd {
        key: keys::online_minute(&site(), minute),
        elements: vec![[7; 16], [9; 16]],
        expire_at: Some(now + SignedDuration::from_mins(31)),
    }];
    let sets = vec![
        crate::store::SetAdd {
            key: keys::online_minute_set(&site(), minute),
            elements: vec![[1; 16]],
            cap: 2_000,
            expire_at: None,
            spill: Some(keys::online_minute(&site(), minute)),
        },
        crate::store::SetAdd {
            key: keys::online_minute_set(&site(), crate::calendar::Minute::from_index(4)),
            elements: vec![],
            cap: 1,
            expire_at: Some(now),
            spill: None,
        },
    ];
    let counter = keys::metric(&site(), Metric::Pageviews, &Scope::Total);
    let salt = keys::salt(&site(), "p");
    let gone = keys::metric(&site(), Metric::Visits, &Scope::Total);
    let records = vec![
        (
            counter,
            Some(Record {
                value: Value::Counter(42),
                expire_at: Some(now),
            }),
        ),
        (
            salt,
            Some(Record {
                value: Value::Bytes(b"s".to_vec()),
                expire_at: None,
            }),
        ),
        (gone, None),
    ];
    let encoded = pending::encode_row(
        now,
        &sketches,
        &sets,
        records.iter().map(|(key, record)| (key, record.as_ref())),
    );
    let expected = pending::Row {
        now,
        sketches,
        sets,
        records,
    };
    assert_eq!(pending::decode_row(0, &encoded).unwrap(), expected);
    // Cut anywhere inside an operation, a row is reported corrupt, never half-read.
    let boundaries: Vec<usize> = (16..encoded.len())
        .filter(|&cut| pending::decode_row(0, &encoded[..cut]).is_ok())
        .collect();
    assert!(
        boundaries.len() <= 6,
        "only whole operations end a row: {boundaries:?}"
    );
}

proptest! {
    #[test]
    fn decoding_any_journal_row_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = pending::decode_row(0, &bytes);
    }
}

/// Writes run on the store's own thread, whichever runtime thread asks; reads do not
/// wait for it. A write that panics is an error to its caller, and the writes after it
/// still run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_run_on_one_thread_and_survive_a_panic() {
    let store = temp_store();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .run_write(|_| Ok(std::thread::current().name().map(str::to_owned)))
                    .await
            })
        })
        .collect();
    for task in tasks {
        let name = task.await.unwrap().unwrap();
        assert_eq!(name.as_deref(), Some(worker::THREAD_NAME));
    }
    let read_on = store
        .run(|_| Ok(std::thread::current().name().map(str::to_owned)))
        .await
        .unwrap();
    assert_ne!(read_on.as_deref(), Some(worker::THREAD_NAME));

    let panicked = store
        .run_write(|_| -> Result<(), StoreError> { panic!("a write that panics") })
        .await;
    assert!(
        matches!(panicked, Err(StoreError::Backend { .. })),
        "{panicked:?}"
    );
    let key = Key::parse("ff:{caukee}:meta").unwrap();
    store.set(&key, b"after", None).await.unwrap();
    assert_eq!(
        store.get(&key, at("2026-12-06T00:00:00Z")).await.unwrap(),
        Some(b"after".to_vec())
    );
}

/// The writer thread lets go of the database before it answers: a caller that drops its
/// last handle right after a write opens the file again at once.
#[tokio::test]
async fn a_store_reopens_right_after_its_last_write() {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::parse("ff:{caukee}:meta").unwrap();
    for n in 0..20u8 {
        let store = EmbeddedStore::open(dir.path()).expect("the last handle was dropped");
        store.set(&key, &[n], None).await.unwrap();
        drop(store);
    }
    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(
        store.get(&key, at("2026-12-06T00:00:00Z")).await.unwrap(),
        Some(vec![19])
    );
}
