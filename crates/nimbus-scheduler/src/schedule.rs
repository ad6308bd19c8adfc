//! [`Schedule`]: when a cron fires, an interval or a cron expression in a time zone, with its
//! stored form (the contract's `schedule` object, timezone always present).

use jiff::Timestamp;
use jiff::tz::TimeZone;
use nimbus_core::NimbusError;
use nimbus_core::limits::MAX_INTERVAL_SECS;
use serde_json::{Value, json};

use crate::cron::CronExpr;

/// A validated schedule.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Every `seconds` seconds, counted from the start of the previous firing.
    Interval {
        /// 1 ..= 365 days.
        seconds: u64,
    },
    /// A cron expression evaluated in a time zone.
    Cron {
        /// The expression as given.
        expression: String,
        /// The parsed expression.
        parsed: CronExpr,
        /// The IANA zone name as given (`UTC` by default).
        timezone: String,
        /// The zone.
        zone: TimeZone,
    },
}

impl Schedule {
    /// An interval schedule (400 `op.invalid_input` on `schedule.seconds` outside 1..=365 days).
    pub fn interval(seconds: u64) -> Result<Self, NimbusError> {
        if seconds == 0 || seconds > MAX_INTERVAL_SECS {
            return Err(NimbusError::invalid_input(
                "schedule.seconds",
                format!("must be an integer from 1 to {MAX_INTERVAL_SECS}"),
            ));
        }
        Ok(Schedule::Interval { seconds })
    }

    /// A cron schedule (400 `op.invalid_input` on `schedule.expression` or `schedule.timezone`).
    pub fn cron(expression: &str, timezone: Option<&str>) -> Result<Self, NimbusError> {
        let parsed = CronExpr::parse(expression).map_err(|r| NimbusError::invalid_input("schedule.expression", r))?;
        let timezone = timezone.unwrap_or("UTC").to_owned();
        let zone = TimeZone::get(&timezone)
            .map_err(|_| NimbusError::invalid_input("schedule.timezone", format!("unknown time zone '{timezone}'")))?;
        // An expression that can never fire (`0 0 30 2 *`) is an error, not a silent no-op.
        if parsed.next_after(Timestamp::now(), &zone).is_none() {
            return Err(NimbusError::invalid_input("schedule.expression", "never matches a date"));
        }
        Ok(Schedule::Cron { expression: expression.to_owned(), parsed, timezone, zone })
    }

    /// Reads the stored form.
    pub fn from_stored(value: &Value) -> Result<Self, NimbusError> {
        match value.get("type").and_then(Value::as_str) {
            Some("interval") => Self::interval(value.get("seconds").and_then(Value::as_u64).unwrap_or(0)),
            Some("cron") => Self::cron(
                value.get("expression").and_then(Value::as_str).unwrap_or(""),
                value.get("timezone").and_then(Value::as_str),
            ),
            _ => Err(NimbusError::invalid_input("schedule.type", "must be 'interval' or 'cron'")),
        }
    }

    /// The stored (and wire) form.
    pub fn to_json(&self) -> Value {
        match self {
            Schedule::Interval { seconds } => json!({ "type": "interval", "seconds": seconds }),
            Schedule::Cron { expression, timezone, .. } => {
                json!({ "type": "cron", "expression": expression, "timezone": timezone })
            }
        }
    }

    /// The next due time strictly after `now_ms` (for an interval: `now + N s`).
    pub fn next_after(&self, now_ms: i64) -> Option<i64> {
        match self {
            Schedule::Interval { seconds } => now_ms.checked_add(i64::try_from(*seconds).ok()?.checked_mul(1000)?),
            Schedule::Cron { parsed, zone, .. } => {
                let now = Timestamp::from_millisecond(now_ms).ok()?;
                parsed.next_after(now, zone).map(|t| t.as_millisecond())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};

    fn field(error: NimbusError) -> String {
        error.detail.and_then(|d| d["field"].as_str().map(str::to_owned)).unwrap_or_default()
    }

    #[test]
    fn interval_bounds() {
        assert_eq!(field(Schedule::interval(0).unwrap_err()), "schedule.seconds");
        assert_eq!(field(Schedule::interval(MAX_INTERVAL_SECS + 1).unwrap_err()), "schedule.seconds");
        let clock = ManualClock::new(1_000);
        let every = Schedule::interval(5).expect("valid");
        assert_eq!(every.next_after(clock.now_ms()), Some(6_000));
        clock.advance(10_000);
        assert_eq!(every.next_after(clock.now_ms()), Some(16_000));
    }

    #[test]
    fn cron_errors_name_their_field() {
        assert_eq!(field(Schedule::cron("0 0 ? * *", None).unwrap_err()), "schedule.expression");
        assert_eq!(field(Schedule::cron("0 0 30 2 *", None).unwrap_err()), "schedule.expression");
        assert_eq!(field(Schedule::cron("0 0 * * *", Some("Mars/Olympus")).unwrap_err()), "schedule.timezone");
    }

    #[test]
    fn cron_next_with_an_injected_clock() {
        // 2025-03-30T00:00:00Z: Berlin springs forward at 01:00Z.
        let clock = ManualClock::new(1_743_292_800_000);
        let schedule = Schedule::cron("30 2 * * *", Some("Europe/Berlin")).expect("valid");
        // 02:30 local does not exist today; the next firing is 2025-03-31T00:30Z (02:30 CEST).
        assert_eq!(schedule.next_after(clock.now_ms()), Some(1_743_381_000_000));
        let stored = Schedule::from_stored(&schedule.to_json()).expect("round trip");
        assert_eq!(stored.to_json(), json!({"type": "cron", "expression": "30 2 * * *", "timezone": "Europe/Berlin"}));
    }
}
