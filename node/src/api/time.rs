//! Times in the API: RFC 3339 in UTC with millisecond precision. The ledger keeps Unix
//! milliseconds; only this module converts.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub fn format_ms(ms: u64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("@{ms}ms"))
}

/// Parses an RFC 3339 time (any offset) into Unix milliseconds.
pub fn parse_ms(text: &str) -> Option<u64> {
    let time = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    u64::try_from(time.unix_timestamp_nanos() / 1_000_000).ok()
}

/// The node's wall clock in Unix milliseconds: read once per accepted request and stamped
/// into the command.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_offsets() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00Z");
        let ms = parse_ms("2026-11-27T10:00:00.250Z").expect("parses");
        assert_eq!(format_ms(ms), "2026-11-27T10:00:00.25Z");
        assert_eq!(parse_ms("2026-11-27T18:00:00+08:00"), parse_ms("2026-11-27T10:00:00Z"));
        assert_eq!(parse_ms("yesterday"), None);
        assert_eq!(parse_ms("1969-12-31T23:59:59Z"), None);
    }
}
