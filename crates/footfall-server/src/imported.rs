//! Imported history: the daily figures of the counter footfall replaced, so a site's chart
//! starts before the switch.
//!
//! The rules, in one place:
//!
//! - **History only.** Imported days are shown by the history (`GET
//!   /api/v1/sites/{site}/history`, JSON and CSV) and never enter a total: the all-time
//!   figures stay the imported baseline (`PUT /admin/v1/sites/{site}/baseline`, the old
//!   counter's own total, which already holds every day it counted) plus what footfall
//!   counted. Nothing is counted twice.
//! - **Live counts win** unless the import said `replace`: a day with live counts is
//!   refused (409, naming the days) by an import without `replace`; with it, the
//!   imported figures are shown for that day (the document marks the day
//!   `replaces_live`) while the live counts stay in the store and in the totals.
//! - **Only settled days** ([`settled_through`](footfall::counter::settled_through): the
//!   day before yesterday, an hour after it closed) and none before [`EARLIEST_DATE`]:
//!   a settled day takes no more live hits, so which figures a day shows cannot change
//!   behind an import's back, and importing the same file again changes nothing.
//! - **Consistent figures:** whole numbers from 0 to [`MAX_DAY_VALUE`] with
//!   `visitors ≤ visits ≤ pageviews` (every visit starts with a page view, every visitor
//!   makes at least one visit); a row that breaks it is refused, as its columns are most
//!   likely swapped. Each date at most once per import.
//! - **Bounded:** at most [`MAX_IMPORT_DAYS`] days per import (and the internal
//!   listener's body limit); one document per site and local year,
//!   [`keys::imported_history`], at most 366 days each, written by compare-and-swap
//!   ([`read_modify_write`]) so it works on every store and two importers never lose each
//!   other's days. Days older than the site's retention are kept and shown once the
//!   retention reaches them.
//!
//! A document is `{"format": 1, "days": {"2025-06-01": {"pageviews": …, "visits": …,
//! "visitors": …, "replaces_live": true?}}}`.

use std::collections::BTreeMap;

use footfall::SiteId;
use footfall::counter::DayFigures;
use footfall::keys::{self, Key};
use footfall::store::{Store, StoreError};
use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cas::{CasError, Step, read_modify_write};

/// The earliest date accepted: older dates are typing mistakes or an epoch (1970-01-01)
/// from an empty field, not the history of a web counter.
pub const EARLIEST_DATE: Date = jiff::civil::date(2000, 1, 1);

/// The most days one import may hold: ten years, the longest retention a site can have.
pub const MAX_IMPORT_DAYS: usize = 3_660;

/// The largest figure of one day: far above any portal's day, and small enough that the
/// sum of every day a site can hold stays far from overflowing.
pub const MAX_DAY_VALUE: u64 = 1_000_000_000_000;

/// How many problems an answer lists before "and N more".
const MAX_LISTED: usize = 20;

/// The document format this version reads and writes.
const FORMAT: u32 = 1;

/// The CSV columns an import needs, in the order the export writes them.
pub const CSV_COLUMNS: [&str; 4] = ["date", "pageviews", "visits", "visitors"];

/// One day's figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayCounts {
    /// Page views.
    pub pageviews: u64,
    /// Visits.
    pub visits: u64,
    /// Distinct visitors.
    pub visitors: u64,
}

impl DayCounts {
    /// The figures of a live day.
    pub fn of(day: &DayFigures) -> Self {
        DayCounts {
            pageviews: day.pageviews,
            visits: day.visits,
            visitors: day.visitors,
        }
    }

    /// True when nothing was counted.
    pub fn is_zero(&self) -> bool {
        self.pageviews == 0 && self.visits == 0 && self.visitors == 0
    }

    fn add(&mut self, other: &DayCounts) {
        self.pageviews = self.pageviews.saturating_add(other.pageviews);
        self.visits = self.visits.saturating_add(other.visits);
        self.visitors = self.visitors.saturating_add(other.visitors);
    }
}

/// One day of an import.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportedDay {
    /// The local date, in the site's time zone.
    pub date: Date,
    /// Its figures.
    pub counts: DayCounts,
}

/// A stored imported day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredDay {
    /// Its figures.
    #[serde(flatten)]
    pub counts: DayCounts,
    /// The day had live counts when it was imported with `replace`: these figures are
    /// shown instead of them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replaces_live: bool,
}

/// Where a day of the history comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Counted by footfall (zero when nothing was).
    Live,
    /// Imported from the earlier counter.
    Imported,
}

/// One day of a site's history, live or imported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryDay {
    /// The local date.
    pub date: Date,
    /// The figures shown.
    pub counts: DayCounts,
    /// Where they come from.
    pub source: Source,
}

impl HistoryDay {
    /// The day's figures, whichever their source.
    pub fn figures(&self) -> DayFigures {
        DayFigures {
            date: self.date,
            pageviews: self.counts.pageviews,
            visits: self.counts.visits,
            visitors: self.counts.visitors,
        }
    }
}

/// The days shown for a site: each live day, or the imported one when the live day has
/// no counts or the import replaced them.
pub fn merge(live: &[DayFigures], imported: &BTreeMap<Date, StoredDay>) -> Vec<HistoryDay> {
    live.iter()
        .map(|day| {
            let counts = DayCounts::of(day);
            match imported.get(&day.date) {
                Some(stored) if stored.replaces_live || counts.is_zero() => HistoryDay {
                    date: day.date,
                    counts: stored.counts,
                    source: Source::Imported,
                },
                _ => HistoryDay {
                    date: day.date,
                    counts,
                    source: Source::Live,
                },
            }
        })
        .collect()
}

/// An import body that cannot be imported; the message lists the problems (at most
/// 20, then how many more).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidImport(pub String);

/// The days of an import body, checked for syntax and consistency but not yet against a
/// site, sorted by date.
#[derive(Debug, Default)]
pub struct ParsedImport {
    /// The days, oldest first, each date once.
    pub days: Vec<ImportedDay>,
    /// The `site` of an exported JSON document, if the body is one.
    pub site: Option<String>,
    /// Its `time_zone`.
    pub time_zone: Option<String>,
}

/// Problems found in a body, listed up to [`MAX_LISTED`].
#[derive(Default)]
struct Problems {
    listed: Vec<String>,
    more: usize,
}

impl Problems {
    fn add(&mut self, problem: String) {
        if self.listed.len() < MAX_LISTED {
            self.listed.push(problem);
        } else {
            self.more += 1;
        }
    }

    fn check(self) -> Result<(), InvalidImport> {
        if self.listed.is_empty() {
            return Ok(());
        }
        let mut message = format!("nothing was imported: {}", self.listed.join("; "));
        if self.more > 0 {
            message.push_str(&format!("; and {} more", self.more));
        }
        Err(InvalidImport(message))
    }
}

fn too_many_days() -> InvalidImport {
    InvalidImport(format!(
        "more than {MAX_IMPORT_DAYS} days in one import: send at most ten years at a time \
         (footfall import-history sends one year per request)"
    ))
}

/// Parses a CSV body: a header row naming `date`, `pageviews`, `visits` and `visitors`
/// (any order, any case; a `source` column, as the export writes, is ignored), then one
/// row per day. A UTF-8 byte-order mark and CRLF line ends are accepted.
pub fn parse_csv(body: &[u8]) -> Result<ParsedImport, InvalidImport> {
    let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(body);
    let header = reader
        .headers()
        .map_err(|e| InvalidImport(format!("the header row cannot be read: {e}")))?
        .clone();
    let columns = csv_columns(&header)?;
    let mut rows = Vec::new();
    let mut problems = Problems::default();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(error) => {
                problems.add(csv_problem(&error));
                // A broken field (invalid UTF-8, unequal lengths) spoils only its row;
                // an I/O error cannot happen on a byte slice, but ends the loop anyway.
                if matches!(error.kind(), csv::ErrorKind::Io(_)) {
                    break;
                }
                continue;
            }
        }
        if rows.len() >= MAX_IMPORT_DAYS {
            return Err(too_many_days());
        }
        let line = record.position().map_or(0, csv::Position::line);
        let at = format!("line {line}");
        let field = |index: usize| record.get(index).unwrap_or("");
        let counts = (|| -> Result<DayCounts, String> {
            Ok(DayCounts {
                pageviews: count_of_text(&at, "pageviews", field(columns[1]))?,
                visits: count_of_text(&at, "visits", field(columns[2]))?,
                visitors: count_of_text(&at, "visitors", field(columns[3]))?,
            })
        })();
        match counts.and_then(|counts| checked_day(&at, field(columns[0]), counts)) {
            Ok(day) => rows.push((day, at)),
            Err(problem) => problems.add(problem),
        }
    }
    finish(rows, problems, None, None)
}

/// The positions of the needed columns (in [`CSV_COLUMNS`] order) in `header`.
fn csv_columns(header: &csv::StringRecord) -> Result<[usize; 4], InvalidImport> {
    let expected = CSV_COLUMNS.join(",");
    if header.iter().all(str::is_empty) {
        return Err(InvalidImport(format!(
            "the body is empty: expected the header row {expected} and one row per day"
        )));
    }
    let mut positions = [usize::MAX; 4];
    for (index, name) in header.iter().enumerate() {
        let name = name.to_ascii_lowercase();
        if name == "source" {
            continue;
        }
        let Some(slot) = CSV_COLUMNS.iter().position(|column| *column == name) else {
            return Err(InvalidImport(format!(
                "unknown column {name:?}: the first row must be the header row {expected} \
                 (a source column is accepted and ignored)"
            )));
        };
        if positions[slot] != usize::MAX {
            return Err(InvalidImport(format!("the column {name:?} appears twice")));
        }
        positions[slot] = index;
    }
    let missing: Vec<&str> = CSV_COLUMNS
        .iter()
        .zip(positions)
        .filter(|(_, position)| *position == usize::MAX)
        .map(|(column, _)| *column)
        .collect();
    if !missing.is_empty() {
        return Err(InvalidImport(format!(
            "the header row lacks {}: expected {expected}",
            missing.join(", ")
        )));
    }
    Ok(positions)
}

fn csv_problem(error: &csv::Error) -> String {
    let line = error
        .position()
        .map_or_else(String::new, |p| format!("line {}: ", p.line()));
    match error.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("{line}{len} fields where the header row has {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => format!("{line}not UTF-8 text"),
        _ => format!("{line}{error}"),
    }
}

fn count_rule(at: &str, name: &str, shown: &str) -> String {
    format!(
        "{at}: {name} must be a whole number from 0 to {MAX_DAY_VALUE} without grouping, not {shown}"
    )
}

fn count_of_text(at: &str, name: &str, text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(value) if value <= MAX_DAY_VALUE && !text.starts_with('+') => Ok(value),
        _ => Err(count_rule(at, name, &format!("{text:?}"))),
    }
}

fn count_of_json(at: &str, name: &str, value: Option<&Value>) -> Result<u64, String> {
    match value {
        Some(number) if number.as_u64().is_some_and(|v| v <= MAX_DAY_VALUE) => {
            Ok(number.as_u64().unwrap_or(0))
        }
        Some(other) => Err(count_rule(at, name, &other.to_string())),
        None => Err(format!("{at}: {name} is missing")),
    }
}

/// Checks one day's date and figures; the error names `at` and the rule.
fn checked_day(at: &str, date: &str, counts: DayCounts) -> Result<ImportedDay, String> {
    let shaped = date.len() == 10
        && date.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    let date: Date = match shaped.then(|| date.parse::<Date>()) {
        Some(Ok(parsed)) => parsed,
        _ => {
            return Err(format!(
                "{at}: date must be a calendar date written YYYY-MM-DD, not {date:?}"
            ));
        }
    };
    if date < EARLIEST_DATE {
        return Err(format!(
            "{at}: {date} is before {EARLIEST_DATE}, the earliest date accepted"
        ));
    }
    let DayCounts {
        pageviews,
        visits,
        visitors,
    } = counts;
    if visits > pageviews {
        return Err(format!(
            "{at} ({date}): visits ({visits}) is more than pageviews ({pageviews}); the rule \
             is visitors <= visits <= pageviews (every visit starts with a page view): are \
             the columns swapped?"
        ));
    }
    if visitors > visits {
        return Err(format!(
            "{at} ({date}): visitors ({visitors}) is more than visits ({visits}); the rule \
             is visitors <= visits <= pageviews (every visitor makes a visit): are the \
             columns swapped?"
        ));
    }
    Ok(ImportedDay { date, counts })
}

/// Sorts the days, refuses dates given twice, and reports every problem found.
fn finish(
    mut rows: Vec<(ImportedDay, String)>,
    mut problems: Problems,
    site: Option<String>,
    time_zone: Option<String>,
) -> Result<ParsedImport, InvalidImport> {
    rows.sort_by_key(|(day, _)| day.date);
    for pair in rows.windows(2) {
        if pair[0].0.date == pair[1].0.date {
            problems.add(format!(
                "{} appears twice ({} and {}): each date at most once",
                pair[0].0.date, pair[0].1, pair[1].1
            ));
        }
    }
    if rows.is_empty() && problems.listed.is_empty() {
        problems.add("no days: expected one row per day after the header".to_owned());
    }
    problems.check()?;
    Ok(ParsedImport {
        days: rows.into_iter().map(|(day, _)| day).collect(),
        site,
        time_zone,
    })
}

/// Parses a JSON body: the export's document (`{"site", "time_zone", "days": […]}`) or
/// its day list alone, each day `{"date", "pageviews", "visits", "visitors"}` (a
/// `source`, as the export writes, is ignored).
pub fn parse_json(body: &[u8]) -> Result<ParsedImport, InvalidImport> {
    let document: Value =
        serde_json::from_slice(body).map_err(|e| InvalidImport(format!("invalid JSON: {e}")))?;
    let (days, site, time_zone) = match document {
        Value::Array(days) => (days, None, None),
        Value::Object(mut object) => {
            let Some(Value::Array(days)) = object.remove("days") else {
                return Err(InvalidImport(
                    "a JSON body is the history's document (with a \"days\" array) or that array alone"
                        .to_owned(),
                ));
            };
            let mut text = |name: &str| match object.remove(name) {
                None => Ok(None),
                Some(Value::String(text)) => Ok(Some(text)),
                Some(other) => Err(InvalidImport(format!(
                    "{name} must be a string, not {other}"
                ))),
            };
            let site = text("site")?;
            let time_zone = text("time_zone")?;
            if let Some(name) = object.keys().next() {
                return Err(InvalidImport(format!(
                    "unknown member {name:?}: the document has site, time_zone and days"
                )));
            }
            (days, site, time_zone)
        }
        _ => {
            return Err(InvalidImport(
                "a JSON body is the history's document or its \"days\" array".to_owned(),
            ));
        }
    };
    if days.len() > MAX_IMPORT_DAYS {
        return Err(too_many_days());
    }
    let mut rows = Vec::with_capacity(days.len());
    let mut problems = Problems::default();
    for (index, day) in days.iter().enumerate() {
        let at = format!("days[{index}]");
        match json_day(&at, day) {
            Ok(day) => rows.push((day, at)),
            Err(problem) => problems.add(problem),
        }
    }
    finish(rows, problems, site, time_zone)
}

fn json_day(at: &str, day: &Value) -> Result<ImportedDay, String> {
    let Value::Object(object) = day else {
        return Err(format!("{at}: a day is an object, not {day}"));
    };
    if let Some(name) = object
        .keys()
        .find(|name| !CSV_COLUMNS.contains(&name.as_str()) && name.as_str() != "source")
    {
        return Err(format!(
            "{at}: unknown member {name:?} (a day has date, pageviews, visits, visitors and source)"
        ));
    }
    let date = match object.get("date") {
        Some(Value::String(date)) => date.as_str(),
        Some(other) => return Err(format!("{at}: date must be a string, not {other}")),
        None => return Err(format!("{at}: date is missing")),
    };
    let counts = DayCounts {
        pageviews: count_of_json(at, "pageviews", object.get("pageviews"))?,
        visits: count_of_json(at, "visits", object.get("visits"))?,
        visitors: count_of_json(at, "visitors", object.get("visitors"))?,
    };
    checked_day(at, date, counts)
}

/// Refuses days after `settled_through` (they may still take live hits).
pub fn check_settled(days: &[ImportedDay], settled_through: Date) -> Result<(), InvalidImport> {
    let late: Vec<Date> = days
        .iter()
        .map(|day| day.date)
        .filter(|date| *date > settled_through)
        .collect();
    if late.is_empty() {
        return Ok(());
    }
    Err(InvalidImport(format!(
        "{}: only settled days can be imported, through {settled_through} (yesterday and \
         today still take live hits)",
        listed(&late)
    )))
}

/// "a, b, c" or "a, … (N days)" for a list of dates.
fn listed(dates: &[Date]) -> String {
    let shown: Vec<String> = dates.iter().take(MAX_LISTED).map(Date::to_string).collect();
    if dates.len() > MAX_LISTED {
        format!("{}, … ({} days)", shown.join(", "), dates.len())
    } else {
        shown.join(", ")
    }
}

/// What an import did (or, in a dry run, would do), day by day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportCounts {
    /// Days that showed nothing and now show the imported figures.
    pub added: usize,
    /// Days that showed other figures (an earlier import, or live counts with
    /// `replace`) and now show the imported ones.
    pub replaced: usize,
    /// Of `replaced`, the days whose live counts are no longer shown.
    pub replaced_live: usize,
    /// Days that already showed exactly these imported figures.
    pub unchanged: usize,
}

impl ImportCounts {
    /// True when a day changed.
    pub fn changed(&self) -> bool {
        self.added + self.replaced > 0
    }

    fn add(&mut self, other: &ImportCounts) {
        self.added += other.added;
        self.replaced += other.replaced;
        self.replaced_live += other.replaced_live;
        self.unchanged += other.unchanged;
    }
}

/// Why imported history could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored document cannot be read. It is never overwritten in that state.
    #[error("the stored imported history ({key}) cannot be read: {message}")]
    Unreadable {
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// Other writers kept changing the document.
    #[error("the imported history kept changing under {attempts} attempts")]
    Contended {
        /// How many attempts were made.
        attempts: u32,
    },
    /// Days with live counts, which an import without `replace` does not hide.
    #[error(
        "{n} day(s) already have live counts: {list}; nothing was imported. Import with \
         replace=true (footfall import-history --replace) to show the imported figures for \
         them instead (their live counts stay in the all-time total), or leave them out",
        n = .0.len(),
        list = listed(.0)
    )]
    LiveCounts(Vec<Date>),
}

/// One site's imported days of one local year, as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct YearDocument {
    format: u32,
    days: BTreeMap<Date, StoredDay>,
}

fn parse_document(key: &Key, bytes: &[u8]) -> Result<YearDocument, HistoryError> {
    let unreadable = |message: String| HistoryError::Unreadable {
        key: key.to_string(),
        message,
    };
    let document: YearDocument = serde_json::from_slice(bytes)
        .map_err(|e| unreadable(format!("not an imported-history document: {e}")))?;
    if document.format != FORMAT {
        return Err(unreadable(format!(
            "format {} is not understood by this version (it reads {FORMAT})",
            document.format
        )));
    }
    Ok(document)
}

fn document_of(key: &Key, bytes: Option<&[u8]>) -> Result<YearDocument, HistoryError> {
    match bytes {
        None => Ok(YearDocument {
            format: FORMAT,
            days: BTreeMap::new(),
        }),
        Some(bytes) => parse_document(key, bytes),
    }
}

/// Puts `days` (all of one year) into `document`: the pure step of an import.
fn merge_into(
    document: &mut YearDocument,
    days: &[ImportedDay],
    live: &BTreeMap<Date, DayCounts>,
    replace: bool,
) -> Result<ImportCounts, HistoryError> {
    let mut counts = ImportCounts::default();
    let mut conflicts = Vec::new();
    for day in days {
        let existing = document.days.get(&day.date).copied();
        let has_live = live.get(&day.date).is_some_and(|c| !c.is_zero());
        let hides_live = existing.is_some_and(|e| e.replaces_live);
        if has_live && !replace && !hides_live {
            conflicts.push(day.date);
            continue;
        }
        let stored = StoredDay {
            counts: day.counts,
            replaces_live: has_live || hides_live,
        };
        // What the day shows now: the stored figures when they hide the live ones or
        // there are none.
        let shown_now = existing.filter(|e| e.replaces_live || !has_live);
        match shown_now {
            Some(shown) if shown.counts == stored.counts => counts.unchanged += 1,
            Some(_) => counts.replaced += 1,
            None if has_live => {
                counts.replaced += 1;
                counts.replaced_live += 1;
            }
            None => counts.added += 1,
        }
        document.days.insert(day.date, stored);
    }
    if conflicts.is_empty() {
        Ok(counts)
    } else {
        Err(HistoryError::LiveCounts(conflicts))
    }
}

/// An import: the days (checked, sorted), the live figures of those of them that have
/// any, and whether live counts may be replaced.
#[derive(Debug)]
pub struct Import<'a> {
    /// The site.
    pub site: &'a SiteId,
    /// The days, oldest first, each date once.
    pub days: &'a [ImportedDay],
    /// The live figures of the imported dates (missing or zero: no live counts).
    pub live: &'a BTreeMap<Date, DayCounts>,
    /// Show the imported figures on days that have live counts.
    pub replace: bool,
    /// Check and count only; write nothing.
    pub dry_run: bool,
}

/// Stores an import, one compare-and-swap per local year touched. Every year is checked
/// before any is written, so a refusal ([`HistoryError::LiveCounts`]) writes nothing.
/// Idempotent: the same days again change nothing and count as `unchanged`.
pub async fn import<S: Store + ?Sized>(
    store: &S,
    import: &Import<'_>,
    now: Timestamp,
) -> Result<ImportCounts, HistoryError> {
    let years = by_year(import.days);
    let mut planned = ImportCounts::default();
    let mut conflicts = Vec::new();
    for (year, days) in &years {
        let key = keys::imported_history(import.site, *year);
        let current = store.get(&key, now).await?;
        let mut document = document_of(&key, current.as_deref())?;
        match merge_into(&mut document, days, import.live, import.replace) {
            Ok(counts) => planned.add(&counts),
            Err(HistoryError::LiveCounts(dates)) => conflicts.extend(dates),
            Err(other) => return Err(other),
        }
    }
    if !conflicts.is_empty() {
        return Err(HistoryError::LiveCounts(conflicts));
    }
    if import.dry_run {
        return Ok(planned);
    }
    let mut done = ImportCounts::default();
    for (year, days) in &years {
        let key = keys::imported_history(import.site, *year);
        let result = read_modify_write(store, &key, now, |current| {
            let mut document = document_of(&key, current)?;
            let counts = merge_into(&mut document, days, import.live, import.replace)?;
            if !counts.changed() {
                return Ok(Step::Keep(counts));
            }
            let bytes = serde_json::to_vec(&document).map_err(|e| HistoryError::Unreadable {
                key: key.to_string(),
                message: e.to_string(),
            })?;
            Ok(Step::Write(bytes, counts))
        })
        .await;
        done.add(&cas_result(result)?);
    }
    Ok(done)
}

fn cas_result<T>(result: Result<T, CasError<HistoryError>>) -> Result<T, HistoryError> {
    result.map_err(|error| match error {
        CasError::Rejected(error) => error,
        CasError::Store(error) => HistoryError::Store(error),
        CasError::Contended { attempts } => HistoryError::Contended { attempts },
    })
}

fn by_year(days: &[ImportedDay]) -> BTreeMap<i16, Vec<ImportedDay>> {
    let mut years: BTreeMap<i16, Vec<ImportedDay>> = BTreeMap::new();
    for day in days {
        years.entry(day.date.year()).or_default().push(*day);
    }
    years
}

/// The imported days from `first` to `last` (both included).
pub async fn read_range<S: Store + ?Sized>(
    store: &S,
    site: &SiteId,
    first: Date,
    last: Date,
    now: Timestamp,
) -> Result<BTreeMap<Date, StoredDay>, HistoryError> {
    let mut days = BTreeMap::new();
    if first > last || last < EARLIEST_DATE {
        return Ok(days);
    }
    for year in first.year().max(EARLIEST_DATE.year())..=last.year() {
        let key = keys::imported_history(site, year);
        if let Some(bytes) = store.get(&key, now).await? {
            let document = parse_document(&key, &bytes)?;
            days.extend(document.days.range(first..=last));
        }
    }
    Ok(days)
}

/// Every imported day of a site: how many and their sums. Reads one document per year
/// from [`EARLIEST_DATE`] to `last_year`.
pub async fn totals<S: Store + ?Sized>(
    store: &S,
    site: &SiteId,
    last_year: i16,
    now: Timestamp,
) -> Result<(usize, DayCounts), HistoryError> {
    let first = EARLIEST_DATE;
    let last = jiff::civil::date(last_year, 12, 31);
    let days = read_range(store, site, first, last, now).await?;
    let mut sum = DayCounts::default();
    for day in days.values() {
        sum.add(&day.counts);
    }
    Ok((days.len(), sum))
}

/// Removes every imported day of a site (years from [`EARLIEST_DATE`] to `last_year`);
/// returns how many there were.
pub async fn delete_all<S: Store + ?Sized>(
    store: &S,
    site: &SiteId,
    last_year: i16,
    now: Timestamp,
) -> Result<usize, HistoryError> {
    let (days, _) = totals(store, site, last_year, now).await?;
    let keys: Vec<Key> = (EARLIEST_DATE.year()..=last_year)
        .map(|year| keys::imported_history(site, year))
        .collect();
    store.delete(&keys).await?;
    Ok(days)
}

impl From<HistoryError> for crate::error::AppError {
    fn from(error: HistoryError) -> Self {
        use crate::error::AppError;
        match error {
            HistoryError::Store(error) => AppError::Unavailable(Some(error.into())),
            HistoryError::Unreadable { .. } => AppError::Internal(error.to_string()),
            HistoryError::Contended { .. } | HistoryError::LiveCounts(_) => {
                AppError::Conflict(error.to_string())
            }
        }
    }
}

impl From<InvalidImport> for crate::error::AppError {
    fn from(error: InvalidImport) -> Self {
        crate::error::AppError::BadRequest(error.0)
    }
}

#[cfg(test)]
mod tests;
