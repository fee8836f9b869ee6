use footfall::store::MemoryStore;
use proptest::prelude::*;

use super::*;

fn at() -> Timestamp {
    "2026-03-02T03:00:00Z".parse().unwrap()
}

fn date(text: &str) -> Date {
    text.parse().unwrap()
}

fn problem(body: &str) -> String {
    match parse_csv(body.as_bytes()) {
        Ok(parsed) => panic!("accepted {body:?}: {parsed:?}"),
        Err(InvalidImport(message)) => message,
    }
}

#[test]
fn csv_with_any_column_order_bom_crlf_and_a_source_column_parses() {
    let body = "\u{feff}Visitors,date , pageviews,visits,source\r\n\
                1,2025-01-02,3,2,imported\r\n\
                4,2025-01-01,9,5,live\r\n";
    let parsed = parse_csv(body.as_bytes()).unwrap();
    assert_eq!(
        parsed.days,
        [
            ImportedDay {
                date: date("2025-01-01"),
                counts: DayCounts {
                    pageviews: 9,
                    visits: 5,
                    visitors: 4
                }
            },
            ImportedDay {
                date: date("2025-01-02"),
                counts: DayCounts {
                    pageviews: 3,
                    visits: 2,
                    visitors: 1
                }
            },
        ]
    );
}

#[test]
fn malformed_csv_is_refused_naming_the_line_and_the_rule() {
    let header = "date,pageviews,visits,visitors\n";
    let cases = [
        ("", "the body is empty"),
        (header, "no days"),
        ("2025-01-01,1,1,1\n", "the first row must be the header row"),
        ("date,pageviews,visits\n2025-01-01,1,1\n", "lacks visitors"),
        ("date,date,pageviews,visits,visitors\n", "appears twice"),
        (
            "date,pageviews,visits,visitors,referrer\n",
            "unknown column \"referrer\"",
        ),
        (
            &format!("{header}2025-01-01,-5,0,0\n"),
            "line 2: pageviews must be a whole number",
        ),
        (
            &format!("{header}2025-01-01,1.5,1,1\n"),
            "pageviews must be a whole number",
        ),
        (
            &format!("{header}2025-01-01,\"1,138\",1,1\n"),
            "without grouping",
        ),
        (
            &format!("{header}2025-01-01,+5,1,1\n"),
            "pageviews must be a whole number",
        ),
        (
            &format!("{header}2025-01-01,,1,1\n"),
            "pageviews must be a whole number",
        ),
        (
            &format!("{header}2025-01-01,1000000000001,1,1\n"),
            "from 0 to 1000000000000",
        ),
        (
            &format!("{header}2025-01-01,99999999999999999999999,1,1\n"),
            "whole number",
        ),
        (
            &format!("{header}2025-02-30,1,1,1\n"),
            "calendar date written YYYY-MM-DD",
        ),
        (&format!("{header}01/02/2025,1,1,1\n"), "YYYY-MM-DD"),
        (&format!("{header}2025-01-01T00:00,1,1,1\n"), "YYYY-MM-DD"),
        (&format!("{header}1970-01-01,1,1,1\n"), "before 2000-01-01"),
        (
            &format!("{header}2025-01-01,1,1\n"),
            "line 2: 3 fields where the header row has 4",
        ),
        (
            &format!("{header}2025-01-01,10,20,5\n"),
            "visits (20) is more than pageviews (10)",
        ),
        (
            &format!("{header}2025-01-01,10,5,6\n"),
            "visitors (6) is more than visits (5)",
        ),
        (
            &format!("{header}2025-01-01,1,1,1\n2025-01-02,1,1,1\n2025-01-01,2,2,2\n"),
            "2025-01-01 appears twice (line 2 and line 4)",
        ),
    ];
    for (body, expected) in cases {
        let message = problem(body);
        assert!(message.contains(expected), "{body:?}: {message}");
    }
    // Not UTF-8.
    let message = match parse_csv(b"date,pageviews,visits,visitors\n2025-01-01,\xff,1,1\n") {
        Err(InvalidImport(message)) => message,
        Ok(parsed) => panic!("accepted: {parsed:?}"),
    };
    assert!(message.contains("line 2"), "{message}");
}

#[test]
fn every_problem_is_listed_up_to_a_bound() {
    let mut body = String::from("date,pageviews,visits,visitors\n");
    for day in 1..=28 {
        body.push_str(&format!("2025-02-{day:02},1,2,3\n"));
    }
    let message = problem(&body);
    assert!(
        message.starts_with("nothing was imported: line 2"),
        "{message}"
    );
    assert!(message.ends_with("; and 8 more"), "{message}");
}

#[test]
fn more_days_than_the_limit_are_refused() {
    let mut body = String::from("date,pageviews,visits,visitors\n");
    let mut day = EARLIEST_DATE;
    for _ in 0..=MAX_IMPORT_DAYS {
        body.push_str(&format!("{day},0,0,0\n"));
        day = day.tomorrow().unwrap();
    }
    assert!(problem(&body).contains("more than 3660 days"));
    let json: Vec<Value> = (0..=MAX_IMPORT_DAYS).map(|_| Value::Null).collect();
    let refused = parse_json(&serde_json::to_vec(&json).unwrap()).unwrap_err();
    assert!(refused.0.contains("more than 3660 days"), "{}", refused.0);
}

#[test]
fn json_takes_the_export_document_or_its_days() {
    let document = serde_json::json!({
        "site": "caukee",
        "time_zone": "Asia/Ho_Chi_Minh",
        "days": [{ "date": "2025-01-01", "pageviews": 3, "visits": 2, "visitors": 1, "source": "live" }]
    });
    let parsed = parse_json(document.to_string().as_bytes()).unwrap();
    assert_eq!(parsed.site.as_deref(), Some("caukee"));
    assert_eq!(parsed.time_zone.as_deref(), Some("Asia/Ho_Chi_Minh"));
    assert_eq!(parsed.days.len(), 1);
    let list = parse_json(document["days"].to_string().as_bytes()).unwrap();
    assert_eq!(list.days, parsed.days);

    let cases = [
        ("{", "invalid JSON"),
        ("3", "the history's document"),
        ("{\"site\":\"x\"}", "\"days\" array"),
        ("{\"days\":[],\"extra\":1}", "unknown member \"extra\""),
        ("[]", "no days"),
        ("[1]", "days[0]: a day is an object"),
        (
            "[{\"date\":\"2025-01-01\",\"pageviews\":-1,\"visits\":0,\"visitors\":0}]",
            "pageviews must be a whole number",
        ),
        (
            "[{\"date\":\"2025-01-01\",\"pageviews\":1.5,\"visits\":0,\"visitors\":0}]",
            "whole number",
        ),
        (
            "[{\"date\":\"2025-01-01\",\"pageviews\":1,\"visits\":0}]",
            "visitors is missing",
        ),
        (
            "[{\"date\":20250101,\"pageviews\":1,\"visits\":0,\"visitors\":0}]",
            "date must be a string",
        ),
        (
            "[{\"date\":\"2025-01-01\",\"pageviews\":1,\"visits\":0,\"visitors\":0,\"uv\":1}]",
            "unknown member \"uv\"",
        ),
    ];
    for (body, expected) in cases {
        let message = parse_json(body.as_bytes()).unwrap_err().0;
        assert!(message.contains(expected), "{body}: {message}");
    }
}

#[test]
fn only_settled_days_are_accepted() {
    let parsed =
        parse_csv(b"date,pageviews,visits,visitors\n2026-02-27,1,1,1\n2026-02-28,1,1,1\n").unwrap();
    assert!(check_settled(&parsed.days, date("2026-02-28")).is_ok());
    let refused = check_settled(&parsed.days, date("2026-02-27"))
        .unwrap_err()
        .0;
    assert!(
        refused.starts_with("2026-02-28: only settled days"),
        "{refused}"
    );
}

fn day(text: &str, pageviews: u64) -> ImportedDay {
    ImportedDay {
        date: date(text),
        counts: DayCounts {
            pageviews,
            visits: pageviews,
            visitors: 0,
        },
    }
}

#[tokio::test]
async fn imports_are_idempotent_and_live_counts_win_unless_replaced() {
    let store = MemoryStore::new();
    let site = SiteId::new("caukee").unwrap();
    let days = [day("2024-12-31", 5), day("2025-01-01", 7)];
    let mut live = BTreeMap::new();
    let import =
        |days: &'static [ImportedDay], live: &BTreeMap<Date, DayCounts>, replace, dry_run| {
            let live = live.clone();
            let site = site.clone();
            let store = &store;
            async move {
                import(
                    store,
                    &Import {
                        site: &site,
                        days,
                        live: &live,
                        replace,
                        dry_run,
                    },
                    at(),
                )
                .await
            }
        };
    let days: &'static [ImportedDay] = Box::leak(Box::new(days));
    // A dry run writes nothing.
    let dry = import(days, &live, false, true).await.unwrap();
    assert_eq!(dry.added, 2);
    assert!(
        read_range(&store, &site, date("2024-01-01"), date("2025-12-31"), at())
            .await
            .unwrap()
            .is_empty()
    );

    let first = import(days, &live, false, false).await.unwrap();
    assert_eq!(
        first,
        ImportCounts {
            added: 2,
            ..ImportCounts::default()
        }
    );
    let again = import(days, &live, false, false).await.unwrap();
    assert_eq!(
        again,
        ImportCounts {
            unchanged: 2,
            ..ImportCounts::default()
        }
    );

    // Two documents, one per year.
    for year in [2024, 2025] {
        assert!(
            store
                .get(&keys::imported_history(&site, year), at())
                .await
                .unwrap()
                .is_some()
        );
    }

    // A corrected figure replaces the earlier import.
    let corrected: &'static [ImportedDay] = Box::leak(Box::new([day("2025-01-01", 8)]));
    let fixed = import(corrected, &live, false, false).await.unwrap();
    assert_eq!(
        fixed,
        ImportCounts {
            replaced: 1,
            ..ImportCounts::default()
        }
    );

    // A day with live counts: refused without replace, nothing written.
    let live_day = DayCounts {
        pageviews: 1,
        visits: 1,
        ..DayCounts::default()
    };
    live.insert(date("2025-01-02"), live_day);
    let both: &'static [ImportedDay] =
        Box::leak(Box::new([day("2025-01-01", 9), day("2025-01-02", 4)]));
    match import(both, &live, false, false).await {
        Err(HistoryError::LiveCounts(dates)) => assert_eq!(dates, [date("2025-01-02")]),
        other => panic!("{other:?}"),
    }
    let stored = read_range(&store, &site, date("2025-01-01"), date("2025-01-02"), at())
        .await
        .unwrap();
    assert_eq!(
        stored[&date("2025-01-01")].counts.pageviews,
        8,
        "nothing written on refusal"
    );
    assert!(!stored.contains_key(&date("2025-01-02")));

    let replaced = import(both, &live, true, false).await.unwrap();
    assert_eq!(
        replaced,
        ImportCounts {
            replaced: 2,
            replaced_live: 1,
            ..ImportCounts::default()
        }
    );
    // Once replaced, the same import again (even without replace) changes nothing.
    let same = import(both, &live, false, false).await.unwrap();
    assert_eq!(
        same,
        ImportCounts {
            unchanged: 2,
            ..ImportCounts::default()
        }
    );

    let stored = read_range(&store, &site, date("2024-12-31"), date("2025-01-03"), at())
        .await
        .unwrap();
    assert!(stored[&date("2025-01-02")].replaces_live);
    let live_days: Vec<DayFigures> = ["2025-01-01", "2025-01-02", "2025-01-03"]
        .iter()
        .map(|d| DayFigures {
            date: date(d),
            visits: u64::from(*d != "2025-01-01"),
            visitors: 0,
            pageviews: u64::from(*d != "2025-01-01"),
        })
        .collect();
    let merged = merge(&live_days, &stored);
    let sources: Vec<(u64, Source)> = merged
        .iter()
        .map(|d| (d.counts.pageviews, d.source))
        .collect();
    assert_eq!(
        sources,
        [
            (9, Source::Imported),
            (4, Source::Imported),
            (1, Source::Live)
        ]
    );

    let (n, sums) = totals(&store, &site, 2026, at()).await.unwrap();
    assert_eq!((n, sums.pageviews), (3, 5 + 9 + 4));
    assert_eq!(delete_all(&store, &site, 2026, at()).await.unwrap(), 3);
    assert_eq!(totals(&store, &site, 2026, at()).await.unwrap().0, 0);
}

#[tokio::test]
async fn an_unreadable_document_is_reported_and_never_overwritten() {
    let store = MemoryStore::new();
    let site = SiteId::new("caukee").unwrap();
    let key = keys::imported_history(&site, 2025);
    store.set(&key, b"{not json", None).await.unwrap();
    let live = BTreeMap::new();
    let days = [day("2025-01-01", 1)];
    let result = import(
        &store,
        &Import {
            site: &site,
            days: &days,
            live: &live,
            replace: false,
            dry_run: false,
        },
        at(),
    )
    .await;
    assert!(
        matches!(result, Err(HistoryError::Unreadable { .. })),
        "{result:?}"
    );
    assert_eq!(
        store.get(&key, at()).await.unwrap().as_deref(),
        Some(&b"{not json"[..])
    );
}

proptest! {
    /// Whatever the bytes, parsing answers (no panic), and what it accepts obeys the rules.
    #[test]
    fn parsing_never_panics_and_accepts_only_what_the_rules_allow(
        rows in proptest::collection::vec(
            ("[0-9-]{0,12}", "-?[0-9]{0,14}", "[0-9a-z.]{0,4}", "[0-9,\" ]{0,4}"), 0..20),
        raw in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut body = String::from("date,pageviews,visits,visitors\n");
        for (date, a, b, c) in &rows {
            body.push_str(&format!("{date},{a},{b},{c}\n"));
        }
        for parsed in [parse_csv(body.as_bytes()), parse_csv(&raw), parse_json(&raw)].into_iter().flatten() {
            for pair in parsed.days.windows(2) {
                prop_assert!(pair[0].date < pair[1].date);
            }
            for day in &parsed.days {
                prop_assert!(day.date >= EARLIEST_DATE);
                prop_assert!(day.counts.visitors <= day.counts.visits);
                prop_assert!(day.counts.visits <= day.counts.pageviews);
                prop_assert!(day.counts.pageviews <= MAX_DAY_VALUE);
            }
        }
    }
}
