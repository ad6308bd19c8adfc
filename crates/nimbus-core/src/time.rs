//! Wall-clock time as epoch milliseconds, and its fixed-width RFC 3339 form.

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Renders epoch milliseconds as RFC 3339 UTC with exactly three fractional digits and a `Z`
/// (`2026-05-18T09:30:00.000Z`), the form every camelCase surface uses.
pub fn rfc3339_ms(epoch_ms: i64) -> String {
    let ts = jiff::Timestamp::from_millisecond(epoch_ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_fixed_width_millis() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_765_386_004_250), "2025-12-10T17:00:04.250Z");
        assert_eq!(rfc3339_ms(1_765_386_004_000), "2025-12-10T17:00:04.000Z");
    }
}
