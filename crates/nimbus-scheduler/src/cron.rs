//! Cron expressions: parsing (5 or 6 fields, ranges, lists, steps, names, macros) and the next
//! firing instant in an IANA time zone.
//!
//! Matching happens in local civil time. A local time that does not exist (DST gap) is skipped;
//! one that occurs twice (DST overlap) fires once, at its first occurrence.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{Timestamp, ToSpan};

/// How many days ahead a next-fire search looks: enough for any expression that can match
/// (the 29th of February comes at least once every 8 years, and 2100 is not a leap year).
const SEARCH_DAYS: u32 = 366 * 9;

/// A parsed cron expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronExpr {
    seconds: u64,
    minutes: u64,
    hours: u64,
    days_of_month: u64,
    months: u64,
    /// Bits 0..=6, Sunday = 0 (a `7` in the expression is folded onto 0).
    days_of_week: u64,
    /// Whether day-of-month was `*` (or `*/n`): then only day-of-week restricts the day.
    dom_unrestricted: bool,
    /// Whether day-of-week was `*` (or `*/n`).
    dow_unrestricted: bool,
}

struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const SECOND: FieldSpec = FieldSpec { name: "second", min: 0, max: 59, names: &[] };
const MINUTE: FieldSpec = FieldSpec { name: "minute", min: 0, max: 59, names: &[] };
const HOUR: FieldSpec = FieldSpec { name: "hour", min: 0, max: 23, names: &[] };
const DAY_OF_MONTH: FieldSpec = FieldSpec { name: "day-of-month", min: 1, max: 31, names: &[] };
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"],
};
const DAY_OF_WEEK: FieldSpec =
    FieldSpec { name: "day-of-week", min: 0, max: 7, names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"] };

impl CronExpr {
    /// Parses an expression; the error is a reason fit for `detail.reason`.
    pub fn parse(expression: &str) -> Result<Self, String> {
        let trimmed = expression.trim();
        let expanded = match trimmed.to_ascii_lowercase().as_str() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other if other.starts_with('@') => return Err(format!("unknown macro '{trimmed}'")),
            _ => trimmed,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let (second, rest) = match fields.len() {
            5 => ("0", &fields[..]),
            6 => (fields[0], &fields[1..]),
            0 => return Err("the expression is empty".into()),
            n => return Err(format!("expected 5 or 6 fields, found {n}")),
        };
        let (days_of_month, dom_unrestricted) = parse_field(rest[2], &DAY_OF_MONTH)?;
        let (mut days_of_week, dow_unrestricted) = parse_field(rest[4], &DAY_OF_WEEK)?;
        if days_of_week & (1 << 7) != 0 {
            days_of_week = (days_of_week & !(1 << 7)) | 1;
        }
        Ok(Self {
            seconds: parse_field(second, &SECOND)?.0,
            minutes: parse_field(rest[0], &MINUTE)?.0,
            hours: parse_field(rest[1], &HOUR)?.0,
            days_of_month,
            months: parse_field(rest[3], &MONTH)?.0,
            days_of_week,
            dom_unrestricted,
            dow_unrestricted,
        })
    }

    /// Whether a civil date matches the day fields, with the classic rule: when both
    /// day-of-month and day-of-week are restricted, either may match.
    fn day_matches(&self, date: Date) -> bool {
        if !bit(self.months, date.month() as u32) {
            return false;
        }
        let dom = bit(self.days_of_month, date.day() as u32);
        let dow = bit(self.days_of_week, date.weekday().to_sunday_zero_offset() as u32);
        match (self.dom_unrestricted, self.dow_unrestricted) {
            (true, true) => true,
            (true, false) => dow,
            (false, true) => dom,
            (false, false) => dom || dow,
        }
    }

    /// The first firing strictly after `after`, in zone `tz`; `None` when the expression
    /// cannot match within the search horizon (e.g. `0 0 30 2 *`).
    pub fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let start = tz.to_datetime(after);
        let start_key = (start.hour(), start.minute(), start.second());
        let mut date = start.date();
        for day in 0..SEARCH_DAYS {
            if self.day_matches(date) {
                for hour in bits(self.hours) {
                    for minute in bits(self.minutes) {
                        for second in bits(self.seconds) {
                            let key = (hour as i8, minute as i8, second as i8);
                            if day == 0 && key <= start_key {
                                continue;
                            }
                            let time = Time::new(key.0, key.1, key.2, 0).ok()?;
                            if let Some(instant) = resolve(DateTime::from_parts(date, time), tz)
                                && instant > after
                            {
                                return Some(instant);
                            }
                        }
                    }
                }
            }
            date = date.checked_add(1.day()).ok()?;
        }
        None
    }
}

/// The instant of a local time: `None` in a DST gap, the first occurrence in an overlap.
fn resolve(local: DateTime, tz: &TimeZone) -> Option<Timestamp> {
    let ambiguous = tz.to_ambiguous_timestamp(local);
    match ambiguous.offset() {
        AmbiguousOffset::Gap { .. } => None,
        _ => ambiguous.earlier().ok(),
    }
}

fn bit(set: u64, n: u32) -> bool {
    set & (1u64 << n) != 0
}

fn bits(set: u64) -> impl Iterator<Item = u32> {
    (0..64).filter(move |n| bit(set, *n))
}

/// Parses one field into a bit set; the flag says whether it starts with `*` (unrestricted for
/// the day-of-month/day-of-week rule).
fn parse_field(raw: &str, spec: &FieldSpec) -> Result<(u64, bool), String> {
    let field = spec.name;
    // `L`, `W` and friends fail below as "not a number or name"; these two get a clearer word.
    if let Some(bad) = raw.chars().find(|c| matches!(c, '?' | '#')) {
        return Err(format!("{field}: '{bad}' is not supported"));
    }
    let mut set = 0u64;
    for item in raw.split(',') {
        if item.is_empty() {
            return Err(format!("{field}: empty list item in '{raw}'"));
        }
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => {
                let step: u32 = step.parse().map_err(|_| format!("{field}: bad step '{step}'"))?;
                if step == 0 {
                    return Err(format!("{field}: step must be at least 1"));
                }
                (base, Some(step))
            }
            None => (item, None),
        };
        let (low, high) = if base == "*" {
            (spec.min, if spec.name == "day-of-week" { 6 } else { spec.max })
        } else if let Some((a, b)) = base.split_once('-') {
            let (a, b) = (value(a, spec)?, value(b, spec)?);
            if a > b {
                return Err(format!("{field}: range {a}-{b} is backwards"));
            }
            (a, b)
        } else {
            if step.is_some() {
                return Err(format!("{field}: a step needs '*' or a range before it ('{item}')"));
            }
            let v = value(base, spec)?;
            (v, v)
        };
        let step = step.unwrap_or(1);
        let mut v = low;
        while v <= high {
            set |= 1u64 << v;
            v += step;
        }
    }
    Ok((set, raw.starts_with('*')))
}

fn value(raw: &str, spec: &FieldSpec) -> Result<u32, String> {
    let upper = raw.to_ascii_uppercase();
    if let Some(i) = spec.names.iter().position(|n| *n == upper) {
        return Ok(i as u32 + if spec.name == "month" { 1 } else { 0 });
    }
    let v: u32 = raw.parse().map_err(|_| format!("{}: '{raw}' is not a number or name", spec.name))?;
    if v < spec.min || v > spec.max {
        return Err(format!("{}: {v} is outside {}-{}", spec.name, spec.min, spec.max));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tz(name: &str) -> TimeZone {
        TimeZone::get(name).expect("zone")
    }

    /// Local civil time in `zone` as an instant (first occurrence).
    fn at(zone: &str, local: &str) -> Timestamp {
        let dt: DateTime = local.parse().expect("datetime");
        tz(zone).to_ambiguous_timestamp(dt).earlier().expect("instant")
    }

    /// The next `n` firings after a local time, rendered in the zone with their offsets.
    fn firings(expr: &str, zone: &str, from_local: &str, n: usize) -> Vec<String> {
        let cron = CronExpr::parse(expr).expect("parses");
        let zone_tz = tz(zone);
        let mut t = at(zone, from_local);
        (0..n)
            .map(|_| {
                t = cron.next_after(t, &zone_tz).expect("fires");
                t.to_zoned_datetime(zone_tz.clone()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
            })
            .collect()
    }

    #[test]
    fn weekdays_at_eight_in_berlin_skip_the_weekend() {
        // Friday 2025-01-10 09:00 → Monday, Tuesday.
        assert_eq!(
            firings("0 8 * * MON-FRI", "Europe/Berlin", "2025-01-10T09:00:00", 2),
            ["2025-01-13T08:00:00+01:00", "2025-01-14T08:00:00+01:00"]
        );
    }

    #[test]
    fn weekdays_at_eight_across_the_march_and_october_changes() {
        // DST starts Sunday 2025-03-30 and ends Sunday 2025-10-26 in Berlin.
        assert_eq!(
            firings("0 8 * * MON-FRI", "Europe/Berlin", "2025-03-28T09:00:00", 2),
            ["2025-03-31T08:00:00+02:00", "2025-04-01T08:00:00+02:00"]
        );
        assert_eq!(
            firings("0 8 * * MON-FRI", "Europe/Berlin", "2025-10-24T09:00:00", 1),
            ["2025-10-27T08:00:00+01:00"]
        );
    }

    #[test]
    fn a_time_in_the_spring_gap_is_skipped() {
        // 2025-03-30 02:30 does not exist in Berlin: that day has no firing.
        assert_eq!(
            firings("30 2 * * *", "Europe/Berlin", "2025-03-29T03:00:00", 2),
            ["2025-03-31T02:30:00+02:00", "2025-04-01T02:30:00+02:00"]
        );
    }

    #[test]
    fn a_time_in_the_autumn_overlap_fires_once() {
        assert_eq!(
            firings("30 2 * * *", "Europe/Berlin", "2025-10-25T03:00:00", 3),
            ["2025-10-26T02:30:00+02:00", "2025-10-27T02:30:00+01:00", "2025-10-28T02:30:00+01:00"]
        );
        // Every 15 minutes through the overlap: the repeated local hour is not fired again.
        let through = firings("*/15 * * * *", "Europe/Berlin", "2025-10-26T02:40:00", 3);
        assert_eq!(through, ["2025-10-26T02:45:00+02:00", "2025-10-26T03:00:00+01:00", "2025-10-26T03:15:00+01:00"]);
    }

    #[test]
    fn quarter_hour_boundaries() {
        assert_eq!(
            firings("*/15 * * * *", "UTC", "2025-01-01T00:59:59", 3),
            ["2025-01-01T01:00:00+00:00", "2025-01-01T01:15:00+00:00", "2025-01-01T01:30:00+00:00"]
        );
        // Exactly on a boundary: strictly after.
        assert_eq!(firings("*/15 * * * *", "UTC", "2025-01-01T01:15:00", 1), ["2025-01-01T01:30:00+00:00"]);
        assert_eq!(
            firings("10-40/15 * * * *", "UTC", "2025-01-01T01:00:00", 4)[2..],
            ["2025-01-01T01:40:00+00:00", "2025-01-01T02:10:00+00:00"]
        );
    }

    #[test]
    fn six_fields_have_seconds() {
        assert_eq!(
            firings("*/20 * * * * *", "UTC", "2025-01-01T00:00:00", 3),
            ["2025-01-01T00:00:20+00:00", "2025-01-01T00:00:40+00:00", "2025-01-01T00:01:00+00:00"]
        );
        assert_eq!(firings("5 0 0 * * *", "UTC", "2025-01-01T00:00:05", 1), ["2025-01-02T00:00:05+00:00"]);
    }

    #[test]
    fn macros() {
        assert_eq!(firings("@hourly", "UTC", "2025-01-01T00:00:00", 1), ["2025-01-01T01:00:00+00:00"]);
        assert_eq!(firings("@daily", "UTC", "2025-01-01T00:00:00", 1), ["2025-01-02T00:00:00+00:00"]);
        assert_eq!(firings("@weekly", "UTC", "2025-01-01T00:00:00", 1), ["2025-01-05T00:00:00+00:00"]);
        assert_eq!(firings("@monthly", "UTC", "2025-01-01T00:00:00", 1), ["2025-02-01T00:00:00+00:00"]);
        assert_eq!(firings("@YEARLY", "UTC", "2025-01-01T00:00:00", 1), ["2026-01-01T00:00:00+00:00"]);
    }

    #[test]
    fn day_of_month_or_day_of_week() {
        // The 13th or any Friday (2025-06: Fri 6th, Fri 13th, Fri 20th).
        assert_eq!(
            firings("0 0 13 * FRI", "UTC", "2025-06-01T00:00:00", 3),
            ["2025-06-06T00:00:00+00:00", "2025-06-13T00:00:00+00:00", "2025-06-20T00:00:00+00:00"]
        );
        // Unrestricted day-of-month: only Fridays.
        assert_eq!(firings("0 0 * * 5", "UTC", "2025-06-01T00:00:00", 1), ["2025-06-06T00:00:00+00:00"]);
        // 7 is Sunday too; names and lists are case-insensitive.
        assert_eq!(firings("0 0 * * 7", "UTC", "2025-06-01T00:00:00", 1), ["2025-06-08T00:00:00+00:00"]);
        assert_eq!(firings("0 0 1 jan,Jul *", "UTC", "2025-06-01T00:00:00", 1), ["2025-07-01T00:00:00+00:00"]);
        // Leap day.
        assert_eq!(firings("0 0 29 2 *", "UTC", "2025-01-01T00:00:00", 1), ["2028-02-29T00:00:00+00:00"]);
    }

    #[test]
    fn impossible_dates_never_fire() {
        let cron = CronExpr::parse("0 0 30 2 *").expect("parses");
        assert_eq!(cron.next_after(Timestamp::UNIX_EPOCH, &TimeZone::UTC), None);
    }

    #[test]
    fn rejected_syntax() {
        for bad in [
            "",
            "* * * *",
            "* * * * * * *",
            "0 0 ? * *",
            "0 0 L * *",
            "0 0 15W * *",
            "0 0 * * 5#3",
            "0 0 * * 5L",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * 32 * *",
            "* * * 13 *",
            "* * * * 8",
            "5-1 * * * *",
            "*/0 * * * *",
            "5/10 * * * *",
            "1,,2 * * * *",
            "x * * * *",
            "* * * FOO *",
            "@reboot",
            "@every 5m",
        ] {
            assert!(CronExpr::parse(bad).is_err(), "{bad:?} must be rejected");
        }
        for good in ["* * * * *", "0 8 * * mon-fri", "0,30 */2 1-15 JAN-JUN *", "0 0 * * SUN,sat", "0 0 * * 0-7"] {
            assert!(CronExpr::parse(good).is_ok(), "{good:?} must parse");
        }
    }
}
