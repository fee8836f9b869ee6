//! Calendar tests.
//!
//! Expected values in the tables are derived by hand from the zones' published rules
//! (the derivation is in each row's comment) and written as UTC instants; the only jiff
//! code they go through is its RFC 3339 parser. Facts about the tz database that the
//! rows rely on (which days skip or repeat midnight) were checked once against the
//! bundled database and are asserted again in `tz_database_facts_the_tables_rely_on`,
//! so a database update that changes them fails loudly there instead of confusingly in
//! the tables.

use jiff::civil::{Date, Weekday};
use jiff::tz::AmbiguousOffset;
use jiff::{SignedDuration, Timestamp, ToSpan};
use proptest::prelude::*;

use super::*;

const HO_CHI_MINH: &str = "Asia/Ho_Chi_Minh";
const LOS_ANGELES: &str = "America/Los_Angeles";
const KIRITIMATI: &str = "Pacific/Kiritimati";
const PAGO_PAGO: &str = "Pacific/Pago_Pago";
const BERLIN: &str = "Europe/Berlin";
const SANTIAGO: &str = "America/Santiago";
const HAVANA: &str = "America/Havana";
const BEIRUT: &str = "Asia/Beirut";
const APIA: &str = "Pacific/Apia";

const ISO: WeekDefinition = WeekDefinition::StartsOn(Weekday::Monday);
const SUNDAY: WeekDefinition = WeekDefinition::StartsOn(Weekday::Sunday);
const SATURDAY: WeekDefinition = WeekDefinition::StartsOn(Weekday::Saturday);
const ROLLING: WeekDefinition = WeekDefinition::Rolling7Days;

fn calendar(zone: &str, week: WeekDefinition) -> Calendar {
    Calendar::new(zone, week).expect("test zones exist in the bundled database")
}

fn instant(text: &str) -> Timestamp {
    text.parse()
        .unwrap_or_else(|error| panic!("bad instant {text:?} in a test table: {error}"))
}

fn date(text: &str) -> Date {
    text.parse()
        .unwrap_or_else(|error| panic!("bad date {text:?} in a test table: {error}"))
}

/// One row of the day table.
struct DayCase {
    zone: &'static str,
    at: &'static str,
    day: &'static str,
    day_start: &'static str,
    next_day_start: &'static str,
}

#[rustfmt::skip]
const DAY_CASES: &[DayCase] = &[
    // Vietnam is UTC+7: local midnight is 17:00 UTC on the previous UTC date.
    DayCase { zone: HO_CHI_MINH, at: "2026-11-29T17:00:00Z", day: "2026-11-30", day_start: "2026-11-29T17:00:00Z", next_day_start: "2026-11-30T17:00:00Z" },
    // One millisecond before local midnight still belongs to the old day.
    DayCase { zone: HO_CHI_MINH, at: "2026-11-29T16:59:59.999Z", day: "2026-11-29", day_start: "2026-11-28T17:00:00Z", next_day_start: "2026-11-29T17:00:00Z" },
    // The last representable nanosecond of a local day.
    DayCase { zone: HO_CHI_MINH, at: "2026-11-30T16:59:59.999999999Z", day: "2026-11-30", day_start: "2026-11-29T17:00:00Z", next_day_start: "2026-11-30T17:00:00Z" },
    // UTC midnight is 07:00 local: the UTC date change must not start a new local day.
    DayCase { zone: HO_CHI_MINH, at: "2026-11-30T00:00:00Z", day: "2026-11-30", day_start: "2026-11-29T17:00:00Z", next_day_start: "2026-11-30T17:00:00Z" },
    // Behind UTC (PST, -8): UTC is already on 1 December while Los Angeles is on 30 November.
    DayCase { zone: LOS_ANGELES, at: "2026-12-01T07:59:59Z", day: "2026-11-30", day_start: "2026-11-30T08:00:00Z", next_day_start: "2026-12-01T08:00:00Z" },
    // Summer time (PDT, -7): midnight moves to 07:00 UTC.
    DayCase { zone: LOS_ANGELES, at: "2026-07-04T06:30:00Z", day: "2026-07-03", day_start: "2026-07-03T07:00:00Z", next_day_start: "2026-07-04T07:00:00Z" },
    // US DST ends 2026-11-01 at 02:00 PDT = 09:00 UTC; 09:30 UTC is the second 01:30
    // (PST). The day began at midnight PDT (07:00 UTC) and ends at midnight PST (08:00 UTC
    // on the 2nd): 25 hours.
    DayCase { zone: LOS_ANGELES, at: "2026-11-01T09:30:00Z", day: "2026-11-01", day_start: "2026-11-01T07:00:00Z", next_day_start: "2026-11-02T08:00:00Z" },
    // Kiritimati is UTC+14: its midnight is 10:00 UTC of the previous UTC date.
    DayCase { zone: KIRITIMATI, at: "2026-11-29T10:00:00Z", day: "2026-11-30", day_start: "2026-11-29T10:00:00Z", next_day_start: "2026-11-30T10:00:00Z" },
    // The instant before that midnight.
    DayCase { zone: KIRITIMATI, at: "2026-11-29T09:59:59.999Z", day: "2026-11-29", day_start: "2026-11-28T10:00:00Z", next_day_start: "2026-11-29T10:00:00Z" },
    // This instant is 1 December 00:30 in Kiritimati (+14) ...
    DayCase { zone: KIRITIMATI, at: "2026-11-30T10:30:00Z", day: "2026-12-01", day_start: "2026-11-30T10:00:00Z", next_day_start: "2026-12-01T10:00:00Z" },
    // ... and 29 November 23:30 in Pago Pago (-11): one instant, local dates two days apart.
    DayCase { zone: PAGO_PAGO, at: "2026-11-30T10:30:00Z", day: "2026-11-29", day_start: "2026-11-29T11:00:00Z", next_day_start: "2026-11-30T11:00:00Z" },
    // Berlin springs forward on 2026-03-29 (last Sunday of March) at 01:00 UTC, 02:00
    // CET -> 03:00 CEST: the day runs from midnight CET (23:00 UTC) to midnight CEST
    // (22:00 UTC), 23 hours.
    DayCase { zone: BERLIN, at: "2026-03-29T12:00:00Z", day: "2026-03-29", day_start: "2026-03-28T23:00:00Z", next_day_start: "2026-03-29T22:00:00Z" },
    // The last instant before the jump (01:59:59.999999999 CET).
    DayCase { zone: BERLIN, at: "2026-03-29T00:59:59.999999999Z", day: "2026-03-29", day_start: "2026-03-28T23:00:00Z", next_day_start: "2026-03-29T22:00:00Z" },
    // The first instant after the jump (03:00 CEST).
    DayCase { zone: BERLIN, at: "2026-03-29T01:00:00Z", day: "2026-03-29", day_start: "2026-03-28T23:00:00Z", next_day_start: "2026-03-29T22:00:00Z" },
    // Berlin falls back on 2026-10-25 at 01:00 UTC, 03:00 CEST -> 02:00 CET. 00:30 UTC is
    // the first 02:30 (CEST). The day runs from midnight CEST (22:00 UTC) to midnight CET
    // (23:00 UTC), 25 hours.
    DayCase { zone: BERLIN, at: "2026-10-25T00:30:00Z", day: "2026-10-25", day_start: "2026-10-24T22:00:00Z", next_day_start: "2026-10-25T23:00:00Z" },
    // 01:30 UTC is the second 02:30 (CET): same day, same bounds.
    DayCase { zone: BERLIN, at: "2026-10-25T01:30:00Z", day: "2026-10-25", day_start: "2026-10-24T22:00:00Z", next_day_start: "2026-10-25T23:00:00Z" },
    // The evening before the 25-hour day is an ordinary CEST day.
    DayCase { zone: BERLIN, at: "2026-10-24T21:59:59.999Z", day: "2026-10-24", day_start: "2026-10-23T22:00:00Z", next_day_start: "2026-10-24T22:00:00Z" },
    // Chile starts DST on the first Sunday on or after 2 September at 04:00 UTC: on
    // 2026-09-06 clocks go from 23:59:59 (-04) to 01:00 (-03), so midnight does not exist
    // and the day starts at 01:00 local = 04:00 UTC. The next midnight (-03) is 03:00 UTC.
    DayCase { zone: SANTIAGO, at: "2026-09-06T04:00:00Z", day: "2026-09-06", day_start: "2026-09-06T04:00:00Z", next_day_start: "2026-09-07T03:00:00Z" },
    // The last instant of the Saturday: its next day starts at the end of the gap.
    DayCase { zone: SANTIAGO, at: "2026-09-06T03:59:59.999999999Z", day: "2026-09-05", day_start: "2026-09-05T04:00:00Z", next_day_start: "2026-09-06T04:00:00Z" },
    // Cuba ends DST on the first Sunday of November at 00:00 standard time (01:00 CDT =
    // 05:00 UTC), back to 00:00 CST: midnight happens at 04:00 UTC and again at 05:00
    // UTC. 05:30 UTC is the second 00:30; the day still started at the first midnight,
    // and ends at midnight CST (-05) on the 3rd = 05:00 UTC.
    DayCase { zone: HAVANA, at: "2025-11-02T05:30:00Z", day: "2025-11-02", day_start: "2025-11-02T04:00:00Z", next_day_start: "2025-11-03T05:00:00Z" },
    // The first 00:30 of that day.
    DayCase { zone: HAVANA, at: "2025-11-02T04:30:00Z", day: "2025-11-02", day_start: "2025-11-02T04:00:00Z", next_day_start: "2025-11-03T05:00:00Z" },
    // The Saturday before ends at the first midnight, not the second.
    DayCase { zone: HAVANA, at: "2025-11-02T03:59:59Z", day: "2025-11-01", day_start: "2025-11-01T04:00:00Z", next_day_start: "2025-11-02T04:00:00Z" },
    // Leap day: 29 February 2028 exists and is followed by 1 March.
    DayCase { zone: HO_CHI_MINH, at: "2028-02-29T16:59:59Z", day: "2028-02-29", day_start: "2028-02-28T17:00:00Z", next_day_start: "2028-02-29T17:00:00Z" },
    // New Year in Vietnam happens while UTC is still on 31 December.
    DayCase { zone: HO_CHI_MINH, at: "2026-12-31T17:00:00Z", day: "2027-01-01", day_start: "2026-12-31T17:00:00Z", next_day_start: "2027-01-01T17:00:00Z" },
    // Before the Unix epoch, negative seconds must still round towards the past.
    DayCase { zone: "UTC", at: "1969-12-31T23:59:59Z", day: "1969-12-31", day_start: "1969-12-31T00:00:00Z", next_day_start: "1970-01-01T00:00:00Z" },
    // Samoa skipped 30 December 2011, jumping from 29 December 24:00 (-10) to
    // 31 December 00:00 (+14) at 10:00 UTC: the day after the 29th starts then.
    DayCase { zone: APIA, at: "2011-12-30T09:59:59Z", day: "2011-12-29", day_start: "2011-12-29T10:00:00Z", next_day_start: "2011-12-30T10:00:00Z" },
];

#[test]
fn day_table() {
    for case in DAY_CASES {
        let calendar = calendar(case.zone, ISO);
        let at = instant(case.at);
        let context = format!("{} at {}", case.zone, case.at);
        assert_eq!(calendar.day(at), date(case.day), "day: {context}");
        assert_eq!(
            calendar.day_key(at).to_string(),
            case.day,
            "day key: {context}"
        );
        assert_eq!(
            calendar.day_start(calendar.day(at)),
            instant(case.day_start),
            "day_start: {context}"
        );
        assert_eq!(
            calendar.next_day_start(at),
            instant(case.next_day_start),
            "next_day_start: {context}"
        );
    }
}

#[rustfmt::skip]
const DAY_START_CASES: &[(&str, &str, &str)] = &[
    // (zone, local date, first instant of that date)
    // Santiago's missing midnight (see DAY_CASES): the day starts where the gap ends, at
    // 04:00 UTC. jiff's `earlier()` would give 03:00 UTC (Saturday 23:00) and a careless
    // "midnight at the old offset" also gives 04:00 only because the gap starts exactly
    // at midnight.
    (SANTIAGO, "2026-09-06", "2026-09-06T04:00:00Z"),
    // Lebanon starts DST on the last Sunday of March at 00:00 (+02 -> +03): 2026-03-29
    // starts at 01:00 +03 = 22:00 UTC on the 28th.
    (BEIRUT, "2026-03-29", "2026-03-28T22:00:00Z"),
    // Cuba starts DST on the second Sunday of March at 00:00 (-05 -> -04): 2026-03-08
    // starts at 01:00 -04 = 05:00 UTC.
    (HAVANA, "2026-03-08", "2026-03-08T05:00:00Z"),
    // Cuba's repeated midnight: the first one (-04) counts.
    (HAVANA, "2025-11-02", "2025-11-02T04:00:00Z"),
    // Berlin's 23-hour day starts at midnight CET.
    (BERLIN, "2026-03-29", "2026-03-28T23:00:00Z"),
    // Samoa's skipped day has no instants of its own; it "starts" when the next one does.
    (APIA, "2011-12-30", "2011-12-30T10:00:00Z"),
    (APIA, "2011-12-31", "2011-12-30T10:00:00Z"),
];

#[test]
fn day_start_table() {
    for &(zone, day, expected) in DAY_START_CASES {
        assert_eq!(
            calendar(zone, ISO).day_start(date(day)),
            instant(expected),
            "{zone} {day}"
        );
    }
}

/// The tables above rely on these facts about the bundled tz database.
#[test]
fn tz_database_facts_the_tables_rely_on() {
    let midnight = |zone: &str, day: &str| {
        calendar(zone, ISO)
            .time_zone()
            .to_ambiguous_timestamp(date(day).to_datetime(jiff::civil::Time::midnight()))
            .offset()
    };
    let hours = |hours: i8| jiff::tz::Offset::constant(hours);
    assert_eq!(
        midnight(SANTIAGO, "2026-09-06"),
        AmbiguousOffset::Gap {
            before: hours(-4),
            after: hours(-3)
        }
    );
    assert_eq!(
        midnight(BEIRUT, "2026-03-29"),
        AmbiguousOffset::Gap {
            before: hours(2),
            after: hours(3)
        }
    );
    assert_eq!(
        midnight(HAVANA, "2026-03-08"),
        AmbiguousOffset::Gap {
            before: hours(-5),
            after: hours(-4)
        }
    );
    assert_eq!(
        midnight(HAVANA, "2025-11-02"),
        AmbiguousOffset::Fold {
            before: hours(-4),
            after: hours(-5)
        }
    );
    // Berlin's transitions happen at 02:00/03:00, never at midnight.
    assert!(matches!(
        midnight(BERLIN, "2026-03-29"),
        AmbiguousOffset::Unambiguous { .. }
    ));
}

/// One row of the week table.
struct WeekCase {
    zone: &'static str,
    week: WeekDefinition,
    at: &'static str,
    key: &'static str,
    week_start: &'static str,
    first_day: &'static str,
}

#[rustfmt::skip]
const WEEK_CASES: &[WeekCase] = &[
    // 1 January 2025 is a Wednesday, so ISO week 1 of 2025 (the week with the year's
    // first Thursday) starts on Monday 30 December 2024: keyed by week-year 2025.
    WeekCase { zone: HO_CHI_MINH, week: ISO, at: "2024-12-30T05:00:00Z", key: "2025-W01", week_start: "2024-12-29T17:00:00Z", first_day: "2024-12-30" },
    // 2026 starts on a Thursday, so it has 53 ISO weeks; Thursday 31 December 2026 is in
    // week 53, which starts on Monday 28 December.
    WeekCase { zone: HO_CHI_MINH, week: ISO, at: "2026-12-31T05:00:00Z", key: "2026-W53", week_start: "2026-12-27T17:00:00Z", first_day: "2026-12-28" },
    // Friday 1 January 2027 is still in 2026-W53: the calendar year is not the week-year.
    WeekCase { zone: HO_CHI_MINH, week: ISO, at: "2027-01-01T00:30:00Z", key: "2026-W53", week_start: "2026-12-27T17:00:00Z", first_day: "2026-12-28" },
    // 2020 is a leap year starting on Wednesday, so it has 53 weeks: Sunday 3 January
    // 2021, 23:59:59.999 local, is the last instant of 2020-W53 (started Monday 28 Dec).
    WeekCase { zone: HO_CHI_MINH, week: ISO, at: "2021-01-03T16:59:59.999Z", key: "2020-W53", week_start: "2020-12-27T17:00:00Z", first_day: "2020-12-28" },
    // One millisecond later it is Monday 4 January 00:00 local: 2021-W01 begins.
    WeekCase { zone: HO_CHI_MINH, week: ISO, at: "2021-01-03T17:00:00Z", key: "2021-W01", week_start: "2021-01-03T17:00:00Z", first_day: "2021-01-04" },
    // Sunday 29 November 23:59:59 PST while UTC is already Monday: the week is still
    // the one that started Monday 23 November (2026-W48, since week 1 started 2025-12-29
    // and 23 November is 329 = 47 * 7 days later), at midnight PST = 08:00 UTC.
    WeekCase { zone: LOS_ANGELES, week: ISO, at: "2026-11-30T07:59:59Z", key: "2026-W48", week_start: "2026-11-23T08:00:00Z", first_day: "2026-11-23" },
    // Monday 30 November 00:00 in Kiritimati while UTC is still Sunday: a new week.
    WeekCase { zone: KIRITIMATI, week: ISO, at: "2026-11-29T10:00:00Z", key: "2026-W49", week_start: "2026-11-29T10:00:00Z", first_day: "2026-11-30" },
    // Berlin's spring-forward Sunday is the last day of 2026-W13 (Monday 23 March is 84 =
    // 12 * 7 days after week 1 began); the week started in winter time, midnight CET.
    WeekCase { zone: BERLIN, week: ISO, at: "2026-03-29T12:00:00Z", key: "2026-W13", week_start: "2026-03-22T23:00:00Z", first_day: "2026-03-23" },
    // The second 02:30 of Berlin's fall-back Sunday: week 43 started in summer time,
    // midnight CEST on Monday 19 October.
    WeekCase { zone: BERLIN, week: ISO, at: "2026-10-25T01:30:00Z", key: "2026-W43", week_start: "2026-10-18T22:00:00Z", first_day: "2026-10-19" },
    // Sunday-start weeks: Monday 30 November belongs to the week of Sunday 29 November.
    WeekCase { zone: HO_CHI_MINH, week: SUNDAY, at: "2026-11-30T05:00:00Z", key: "w2026-11-29", week_start: "2026-11-28T17:00:00Z", first_day: "2026-11-29" },
    // Sunday 00:00 local exactly starts the week.
    WeekCase { zone: HO_CHI_MINH, week: SUNDAY, at: "2026-11-28T17:00:00Z", key: "w2026-11-29", week_start: "2026-11-28T17:00:00Z", first_day: "2026-11-29" },
    // Saturday 23:59:59.999 local is the end of the previous week.
    WeekCase { zone: HO_CHI_MINH, week: SUNDAY, at: "2026-11-28T16:59:59.999Z", key: "w2026-11-22", week_start: "2026-11-21T17:00:00Z", first_day: "2026-11-22" },
    // Thursday 31 December 2026 (local 31 December 23:30 at -11) in a Sunday-start week
    // that began on Sunday 27 December, midnight -11 = 11:00 UTC.
    WeekCase { zone: PAGO_PAGO, week: SUNDAY, at: "2027-01-01T10:30:00Z", key: "w2026-12-27", week_start: "2026-12-27T11:00:00Z", first_day: "2026-12-27" },
    // A Sunday whose midnight Santiago skipped: that week starts at 01:00 local.
    WeekCase { zone: SANTIAGO, week: SUNDAY, at: "2026-09-06T12:00:00Z", key: "w2026-09-06", week_start: "2026-09-06T04:00:00Z", first_day: "2026-09-06" },
    // Saturday-start weeks across New Year: Thursday 31 December 2026 is in the week of
    // Saturday 26 December.
    WeekCase { zone: HO_CHI_MINH, week: SATURDAY, at: "2026-12-31T05:00:00Z", key: "w2026-12-26", week_start: "2026-12-25T17:00:00Z", first_day: "2026-12-26" },
    // Saturday 2 January 2027 00:00 local starts the next one.
    WeekCase { zone: HO_CHI_MINH, week: SATURDAY, at: "2027-01-01T17:00:00Z", key: "w2027-01-02", week_start: "2027-01-01T17:00:00Z", first_day: "2027-01-02" },
    // Rolling: the last 7 local days ending today, 24 to 30 November.
    WeekCase { zone: HO_CHI_MINH, week: ROLLING, at: "2026-11-30T05:00:00Z", key: "r2026-11-30", week_start: "2026-11-23T17:00:00Z", first_day: "2026-11-24" },
    // Rolling across a leap day: 25, 26, 27, 28, 29 February and 1, 2 March 2028.
    WeekCase { zone: HO_CHI_MINH, week: ROLLING, at: "2028-03-02T05:00:00Z", key: "r2028-03-02", week_start: "2028-02-24T17:00:00Z", first_day: "2028-02-25" },
    // Rolling on Berlin's 25-hour day: the window began in summer time six days earlier.
    WeekCase { zone: BERLIN, week: ROLLING, at: "2026-10-25T01:30:00Z", key: "r2026-10-25", week_start: "2026-10-18T22:00:00Z", first_day: "2026-10-19" },
];

#[test]
fn week_table() {
    for case in WEEK_CASES {
        let calendar = calendar(case.zone, case.week);
        let at = instant(case.at);
        let context = format!("{} {:?} at {}", case.zone, case.week, case.at);
        assert_eq!(calendar.week(at).to_string(), case.key, "key: {context}");
        assert_eq!(
            calendar.week_start(at),
            instant(case.week_start),
            "week_start: {context}"
        );
        let first_day = date(case.first_day);
        let expected_days: Vec<Date> = first_day.series(1.day()).take(7).collect();
        assert_eq!(
            calendar.week_days(at).to_vec(),
            expected_days,
            "week_days: {context}"
        );
        assert_eq!(
            calendar.week(at).first_day(),
            Some(first_day),
            "first_day: {context}"
        );
    }
}

#[rustfmt::skip]
const MONTH_CASES: &[(&str, &str, &str, &str)] = &[
    // (zone, instant, month key, month start)
    // The last millisecond of November in Vietnam; November 1 began at 17:00 UTC on 31 October.
    (HO_CHI_MINH, "2026-11-30T16:59:59.999Z", "2026-11", "2026-10-31T17:00:00Z"),
    // December begins at local midnight, while UTC is still on 30 November.
    (HO_CHI_MINH, "2026-11-30T17:00:00Z", "2026-12", "2026-11-30T17:00:00Z"),
    // Los Angeles on 30 November; 1 November was the fall-back day, whose midnight was
    // still PDT (-7), 07:00 UTC.
    (LOS_ANGELES, "2026-12-01T07:59:59Z", "2026-11", "2026-11-01T07:00:00Z"),
    // Leap day is in February.
    (HO_CHI_MINH, "2028-02-29T12:00:00Z", "2028-02", "2028-01-31T17:00:00Z"),
    // The instant after 29 February 23:59:59.999999999 local is 1 March.
    (HO_CHI_MINH, "2028-02-29T17:00:00Z", "2028-03", "2028-02-29T17:00:00Z"),
    // 31 December 23:59:59 at -11 is 1 January 10:59:59 UTC: still December locally.
    (PAGO_PAGO, "2027-01-01T10:59:59Z", "2026-12", "2026-12-01T11:00:00Z"),
    // 1 January 00:00 at +14 is 31 December 10:00 UTC: already January locally.
    (KIRITIMATI, "2026-12-31T10:00:00Z", "2027-01", "2026-12-31T10:00:00Z"),
    // April in Berlin started in summer time (midnight CEST = 22:00 UTC).
    (BERLIN, "2026-04-01T12:00:00Z", "2026-04", "2026-03-31T22:00:00Z"),
    // The end of March in Berlin (23:59:59 CEST); March started in winter time.
    (BERLIN, "2026-03-31T21:59:59Z", "2026-03", "2026-02-28T23:00:00Z"),
];

#[test]
fn month_table() {
    for &(zone, at, key, start) in MONTH_CASES {
        let calendar = calendar(zone, ISO);
        let at = instant(at);
        assert_eq!(calendar.month(at).to_string(), key, "{zone} at {at}");
        assert_eq!(calendar.month_start(at), instant(start), "{zone} at {at}");
    }
}

#[rustfmt::skip]
const VALID_WEEK_KEYS: &[(&str, WeekKey)] = &[
    // The canonical forms, one per variant, and the week-53 years from the brief.
    ("2025-W01", WeekKey::Iso { year: 2025, week: 1 }),
    ("2026-W53", WeekKey::Iso { year: 2026, week: 53 }),
    ("2020-W53", WeekKey::Iso { year: 2020, week: 53 }),
    ("w2026-11-29", WeekKey::StartingOn(Date::constant(2026, 11, 29))),
    ("r2026-11-30", WeekKey::Rolling(Date::constant(2026, 11, 30))),
    // Years before 1 CE keep four digits after the sign.
    ("-0001-W01", WeekKey::Iso { year: -1, week: 1 }),
];

#[test]
fn valid_week_keys_parse() {
    for (text, key) in VALID_WEEK_KEYS {
        assert_eq!(text.parse::<WeekKey>().as_ref(), Ok(key), "{text}");
        assert_eq!(key.to_string(), *text);
    }
}

#[rustfmt::skip]
const INVALID_KEYS: &[(&str, &str)] = &[
    // (kind, input) — each is rejected so that no period is ever stored under two keys.
    ("day", ""),
    ("day", "2026-11-31"),           // November has 30 days.
    ("day", "2027-02-29"),           // 2027 is not a leap year.
    ("day", "2026-1-30"),            // Month must have two digits.
    ("day", "26-11-30"),             // Year must have four digits.
    ("day", "02026-11-30"),          // ... and not more.
    ("day", "+2026-11-30"),          // No plus sign.
    ("day", "-0000-01-01"),          // Year zero is written without a sign.
    ("day", "20261130"),             // ISO basic format is a second spelling.
    ("day", "2026-11-30 "),          // No trailing space.
    ("day", "2026-11-30\n"),
    ("day", "2026-11-30T00:00"),
    ("day", "２０２６-11-30"),       // Full-width digits are not ASCII digits.
    ("week", "2025-W53"),            // 2025 starts on a Wednesday and is not leap: 52 weeks.
    ("week", "2026-W00"),
    ("week", "2026-W1"),
    ("week", "2026-w01"),
    ("week", "2026W01"),
    ("week", "x2026-11-29"),
    ("week", "w2026-11-31"),
    ("week", "W2026-11-29"),
    ("week", "r"),
    ("week", "w"),
    ("month", "2026-13"),
    ("month", "2026-00"),
    ("month", "2026-1"),
    ("month", "2026-011"),
    ("month", "-0000-01"),
    ("month", "10000-01"),           // Beyond jiff's range.
    ("minute", "+5"),
    ("minute", "05"),
    ("minute", "-0"),
    ("minute", " 5"),
    ("minute", "9223372036854775808"), // i64::MAX + 1.
];

#[test]
fn invalid_keys_are_rejected() {
    for &(kind, input) in INVALID_KEYS {
        let error = match kind {
            "day" => input.parse::<DayKey>().err(),
            "week" => input.parse::<WeekKey>().err(),
            "month" => input.parse::<MonthKey>().err(),
            "minute" => input.parse::<Minute>().err(),
            _ => unreachable!("unknown kind in table"),
        };
        let Some(CalendarError::InvalidKey {
            kind: reported,
            input: echoed,
            ..
        }) = error
        else {
            panic!("{kind} key {input:?} was accepted: {error:?}");
        };
        assert_eq!((reported, echoed.as_str()), (kind, input));
    }
}

#[test]
fn unknown_time_zones_are_errors_that_name_the_zone() {
    let long_name = "Asia/".repeat(10_000);
    for name in [
        "",
        "Nope/Zone",
        "../../etc/passwd",
        "/usr/share/zoneinfo/UTC",
        "+07:00",
        "UTC+7",
        "Asia/Ho_Chi_Minh ",
        "Asia/Ho_Chi_Minh\0",
        "Châu Á/Hồ Chí Minh",
        long_name.as_str(),
    ] {
        let error = Calendar::new(name, ISO).expect_err(name);
        assert_eq!(
            error,
            CalendarError::UnknownTimeZone {
                name: name.to_owned()
            }
        );
        assert!(error.to_string().contains(&format!("{name:?}")));
    }
}

#[test]
fn zone_names_are_case_insensitive_and_canonicalised() {
    let lower = calendar("asia/ho_chi_minh", ISO);
    assert_eq!(lower.time_zone_name(), "Asia/Ho_Chi_Minh");
    assert_eq!(lower, Calendar::default());
}

#[test]
fn default_calendar_is_vietnam_with_iso_weeks() {
    let calendar = Calendar::default();
    assert_eq!(calendar.time_zone_name(), "Asia/Ho_Chi_Minh");
    assert_eq!(
        calendar.week_definition(),
        WeekDefinition::StartsOn(Weekday::Monday)
    );
    assert_eq!(
        format!("{calendar:?}"),
        r#"Calendar { time_zone: "Asia/Ho_Chi_Minh", week: StartsOn(Monday) }"#
    );
    // UTC+7 all year, no DST: midnight is 17:00 UTC in January and in July.
    for (at, midnight) in [
        ("2026-01-15T12:00:00Z", "2026-01-14T17:00:00Z"),
        ("2026-07-15T12:00:00Z", "2026-07-14T17:00:00Z"),
    ] {
        assert_eq!(
            calendar.day_start(calendar.day(instant(at))),
            instant(midnight)
        );
    }
}

#[test]
fn calendars_differ_by_zone_and_week() {
    assert_ne!(calendar(HO_CHI_MINH, ISO), calendar(HO_CHI_MINH, SUNDAY));
    assert_ne!(calendar(HO_CHI_MINH, ISO), calendar(BERLIN, ISO));
}

#[test]
fn extreme_instants_do_not_panic() {
    for zone in [KIRITIMATI, PAGO_PAGO, "UTC", HO_CHI_MINH] {
        for week in [ISO, SUNDAY, SATURDAY, ROLLING] {
            let calendar = calendar(zone, week);
            for at in [Timestamp::MIN, Timestamp::MAX, Timestamp::UNIX_EPOCH] {
                let day = calendar.day(at);
                let _ = calendar.day_start(day);
                let _ = calendar.day_start(Date::MIN);
                let _ = calendar.day_start(Date::MAX);
                let _ = calendar.next_day_start(at);
                let week_key = calendar.week(at);
                assert_eq!(week_key.to_string().parse::<WeekKey>(), Ok(week_key));
                let _ = calendar.week_start(at);
                let _ = calendar.week_days(at);
                let _ = calendar.month(at);
                let _ = calendar.month_start(at);
            }
        }
    }
    assert_eq!(Minute::of(Timestamp::MIN).start(), Timestamp::MIN);
    assert_eq!(Minute::from_index(i64::MAX).end(), Timestamp::MAX);
    assert_eq!(Minute::from_index(i64::MIN).start(), Timestamp::MIN);
}

#[rustfmt::skip]
const MINUTE_CASES: &[(&str, i64)] = &[
    // Minute numbers; 2026-11-30T00:00:00Z is 1795996800 s after the epoch
    // (`date -u -d 2026-11-30 +%s`), 29933280 minutes.
    ("1970-01-01T00:00:00Z", 0),
    ("1970-01-01T00:00:59.999999999Z", 0),
    ("1970-01-01T00:01:00Z", 1),
    // Before the epoch minutes round towards the past, not towards zero.
    ("1969-12-31T23:59:59Z", -1),
    ("1969-12-31T23:59:00Z", -1),
    ("1969-12-31T23:58:59.5Z", -2),
    ("2026-11-30T00:00:00Z", 29_933_280),
    // 10:05:30 is 1796033130 s; 10:05:00 starts minute 29933885.
    ("2026-11-30T10:05:30Z", 29_933_885),
];

#[test]
fn minute_table() {
    for &(at, index) in MINUTE_CASES {
        let minute = Minute::of(instant(at));
        assert_eq!(minute.index(), index, "{at}");
        assert_eq!(minute.to_string(), index.to_string());
        assert_eq!(minute.to_string().parse::<Minute>(), Ok(minute));
    }
    assert_eq!(
        Minute::from_index(29_933_885).start(),
        instant("2026-11-30T10:05:00Z")
    );
    assert_eq!(
        Minute::from_index(29_933_885).end(),
        instant("2026-11-30T10:06:00Z")
    );
}

#[rustfmt::skip]
const ONLINE_CASES: &[(&str, SignedDuration, &[i64])] = &[
    // (now, window, expected buckets oldest first)
    // The default: the current minute and the four before it.
    ("2026-11-30T10:05:30Z", SignedDuration::from_mins(5), &[29_933_881, 29_933_882, 29_933_883, 29_933_884, 29_933_885]),
    // Exactly on a minute boundary the current bucket has just begun; still five buckets.
    ("2026-11-30T10:05:00Z", SignedDuration::from_mins(5), &[29_933_881, 29_933_882, 29_933_883, 29_933_884, 29_933_885]),
    // 90 seconds round up to two buckets.
    ("2026-11-30T10:05:30Z", SignedDuration::from_secs(90), &[29_933_884, 29_933_885]),
    // Just over one minute is two buckets; exactly one minute is one.
    ("2026-11-30T10:05:30Z", SignedDuration::from_millis(60_001), &[29_933_884, 29_933_885]),
    ("2026-11-30T10:05:30Z", SignedDuration::from_mins(1), &[29_933_885]),
    // The smallest positive window still reads the current bucket.
    ("2026-11-30T10:05:30Z", SignedDuration::from_nanos(1), &[29_933_885]),
    // An empty or negative window reads nothing.
    ("2026-11-30T10:05:30Z", SignedDuration::ZERO, &[]),
    ("2026-11-30T10:05:30Z", SignedDuration::from_mins(-5), &[]),
    // Before the epoch the arithmetic must not truncate towards zero.
    ("1970-01-01T00:00:30Z", SignedDuration::from_mins(3), &[-2, -1, 0]),
];

#[test]
fn online_minutes_table() {
    for &(at, window, expected) in ONLINE_CASES {
        let buckets: Vec<i64> = online_minutes(instant(at), window)
            .map(Minute::index)
            .collect();
        assert_eq!(buckets, expected, "{at} window {window:?}");
        let reversed: Vec<i64> = online_minutes(instant(at), window)
            .rev()
            .map(Minute::index)
            .collect();
        let mut expected_reversed = expected.to_vec();
        expected_reversed.reverse();
        assert_eq!(
            reversed, expected_reversed,
            "{at} window {window:?} reversed"
        );
    }
    assert_eq!(
        online_minutes(
            instant("2026-11-30T10:05:30Z"),
            SignedDuration::from_mins(30)
        )
        .count(),
        30
    );
}

#[test]
fn huge_online_windows_are_lazy() {
    let mut buckets = online_minutes(Timestamp::MIN, SignedDuration::MAX);
    let current = Minute::of(Timestamp::MIN);
    assert_eq!(buckets.next_back(), Some(current));
    assert_eq!(buckets.next_back(), current.checked_add(-1));
    assert!(buckets.next().is_some());
    let _ = buckets.size_hint();
}

/// Zones for the property tests: the table zones plus half-hour and 45-minute offsets,
/// a half-hour DST shift (Lord Howe) and whole-day jumps (Apia, Kiritimati's 1994 jump).
const PROPERTY_ZONES: &[&str] = &[
    HO_CHI_MINH,
    LOS_ANGELES,
    KIRITIMATI,
    PAGO_PAGO,
    BERLIN,
    SANTIAGO,
    HAVANA,
    BEIRUT,
    APIA,
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "America/St_Johns",
    "Asia/Tehran",
    "UTC",
];

fn any_calendar() -> impl Strategy<Value = Calendar> {
    let week = prop_oneof![
        (0_i8..7).prop_map(|offset| WeekDefinition::StartsOn(
            Weekday::from_monday_zero_offset(offset).expect("0..7 is a weekday")
        )),
        Just(WeekDefinition::Rolling7Days),
    ];
    (proptest::sample::select(PROPERTY_ZONES), week).prop_map(|(zone, week)| calendar(zone, week))
}

/// Instants from 1970 to 2100 with nanosecond precision.
fn any_instant() -> impl Strategy<Value = Timestamp> {
    (0_i64..4_102_444_800, 0_i32..1_000_000_000).prop_map(|(second, nanosecond)| {
        Timestamp::new(second, nanosecond).expect("in jiff's range")
    })
}

/// The number of days from jiff's first date, -9999-01-01, to its last, 9999-12-31.
const LAST_DATE_OFFSET: i32 = 7_304_483;

#[test]
fn the_date_strategy_spans_exactly_jiffs_range() {
    assert_eq!(
        Date::MIN.until(Date::MAX).unwrap().get_days(),
        LAST_DATE_OFFSET
    );
    assert_eq!(
        Date::MIN.checked_add(LAST_DATE_OFFSET.days()).unwrap(),
        Date::MAX
    );
}

fn any_date() -> impl Strategy<Value = Date> {
    // Every date jiff supports. A span of more days than this is out of jiff's range
    // and panics when built, which is why the bound is exact.
    (0..=LAST_DATE_OFFSET).prop_map(|days| Date::MIN.saturating_add(days.days()))
}

fn assert_key_characters(text: &str) {
    assert!(
        text.bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-'),
        "key {text:?} has characters that store keys reserve"
    );
}

proptest! {
    #[test]
    fn instant_lies_in_its_local_day(calendar in any_calendar(), at in any_instant()) {
        let today = calendar.day(at);
        let next = calendar.next_day_start(at);
        prop_assert!(calendar.day_start(today) <= at);
        prop_assert!(at < next);
        prop_assert!(calendar.day(next) > today);
        prop_assert_eq!(calendar.day(next.checked_sub(SignedDuration::from_nanos(1)).unwrap()), today);
    }

    #[test]
    fn instant_lies_in_its_week(calendar in any_calendar(), at in any_instant()) {
        let today = calendar.day(at);
        let days = calendar.week_days(at);
        prop_assert!(days.contains(&today));
        for pair in days.windows(2) {
            prop_assert_eq!(pair[0].tomorrow().unwrap(), pair[1]);
        }
        let week_start = calendar.week_start(at);
        prop_assert_eq!(week_start, calendar.day_start(days[0]));
        prop_assert!(week_start <= at);
        prop_assert!(at < calendar.day_start(days[6].tomorrow().unwrap()));
        match calendar.week_definition() {
            WeekDefinition::StartsOn(first_weekday) => prop_assert_eq!(days[0].weekday(), first_weekday),
            WeekDefinition::Rolling7Days => prop_assert_eq!(days[6], today),
        }
        let key = calendar.week(at);
        prop_assert_eq!(key.first_day(), Some(days[0]));
        prop_assert_eq!(key.to_string().parse::<WeekKey>(), Ok(key));
    }

    #[test]
    fn instant_lies_in_its_month(calendar in any_calendar(), at in any_instant()) {
        let today = calendar.day(at);
        let month = calendar.month(at);
        prop_assert_eq!((month.year(), month.month()), (today.year(), today.month()));
        prop_assert!(calendar.month_start(at) <= at);
        prop_assert_eq!(calendar.day(calendar.month_start(at)), month.first_day());
    }

    #[test]
    fn keys_round_trip_through_their_strings(day in any_date()) {
        let day_key = DayKey::new(day);
        let week_keys = [
            WeekKey::from_iso_date(day),
            WeekKey::StartingOn(day),
            WeekKey::Rolling(day),
        ];
        let month_key = MonthKey::of_date(day);
        prop_assert_eq!(day_key.to_string().parse::<DayKey>(), Ok(day_key));
        prop_assert_eq!(month_key.to_string().parse::<MonthKey>(), Ok(month_key));
        assert_key_characters(&day_key.to_string());
        assert_key_characters(&month_key.to_string());
        for week_key in week_keys {
            prop_assert_eq!(week_key.to_string().parse::<WeekKey>(), Ok(week_key));
            assert_key_characters(&week_key.to_string());
        }
        // Same-kind keys are as long as each other, so they sort like their dates.
        if day.year() >= 0 {
            prop_assert_eq!(day_key.to_string().len(), 10);
        }
    }

    #[test]
    fn any_string_parses_canonically_or_not_at_all(text in "\\PC{0,16}|-?[0-9]{4}-[0-9W]{2,3}(-[0-9]{2})?|[wr][0-9]{4}-[0-9]{2}-[0-9]{2}") {
        if let Ok(key) = text.parse::<DayKey>() { prop_assert_eq!(key.to_string(), text.clone()); }
        if let Ok(key) = text.parse::<WeekKey>() { prop_assert_eq!(key.to_string(), text.clone()); }
        if let Ok(key) = text.parse::<MonthKey>() { prop_assert_eq!(key.to_string(), text.clone()); }
        if let Ok(key) = text.parse::<Minute>() { prop_assert_eq!(key.to_string(), text.clone()); }
    }

    #[test]
    fn any_zone_name_is_handled(name in "\\PC{0,40}") {
        if let Err(error) = Calendar::new(&name, ISO) {
            prop_assert_eq!(error, CalendarError::UnknownTimeZone { name });
        }
    }

    #[test]
    fn instant_lies_in_its_minute(at in any_instant()) {
        let minute = Minute::of(at);
        prop_assert!(minute.start() <= at && at < minute.end());
        prop_assert_eq!(minute.end().duration_since(minute.start()), SignedDuration::from_mins(1));
    }

    #[test]
    fn minutes_round_trip(index in any::<i64>()) {
        let minute = Minute::from_index(index);
        prop_assert_eq!(minute.to_string().parse::<Minute>(), Ok(minute));
    }

    #[test]
    fn online_buckets_cover_the_window(at in any_instant(), window_nanos in 1_i64..=1_800_000_000_000) {
        let window = SignedDuration::from_nanos(window_nanos);
        let buckets: Vec<Minute> = online_minutes(at, window).collect();
        let minute_nanos = 60_000_000_000_i64;
        let expected_count = (window_nanos + minute_nanos - 1) / minute_nanos;
        prop_assert_eq!(i64::try_from(buckets.len()).unwrap(), expected_count);
        prop_assert_eq!(buckets.last().copied(), Some(Minute::of(at)));
        for pair in buckets.windows(2) {
            prop_assert_eq!(pair[0].checked_add(1), Some(pair[1]));
        }
        // The covered span, from the oldest bucket's start to `at`, is between n - 1 and
        // n minutes long.
        let covered = at.duration_since(buckets[0].start());
        prop_assert!(covered >= SignedDuration::from_mins(expected_count - 1));
        prop_assert!(covered < SignedDuration::from_mins(expected_count));
    }
}
