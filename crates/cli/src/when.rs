//! Points in time and durations on the command line: `10m`, `2h`, `3d`
//! (that long ago), RFC 3339 timestamps and unix milliseconds.
//!
//! Invariants: every time is unix milliseconds (UTC); a duration is a whole
//! number with `s`, `m`, `h` or `d` (a bare number is seconds for
//! durations); a bare number as a point in time is unix milliseconds.

use std::time::Duration;

use crate::output::now_millis;

/// A duration: `30s`, `15m`, `12h`, `7d` (a plain number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 30s, 15m, 12h or 7d"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?} has an unknown unit (use s, m, h or d)")),
    };
    Ok(Duration::from_secs(value.saturating_mul(seconds)))
}

/// A point in time as unix milliseconds: a duration ago (`10m`, `2h`, `3d`),
/// an RFC 3339 timestamp (`2026-11-22T02:49:43Z`, `2026-11-22 02:49:43.906+01:00`)
/// or unix milliseconds (`1763800000123`).
pub fn parse_instant(text: &str) -> Result<u64, String> {
    parse_instant_at(text, now_millis())
}

fn parse_instant_at(text: &str, now: u64) -> Result<u64, String> {
    if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) {
        return text
            .parse()
            .map_err(|_| format!("{text:?} is too large for unix milliseconds"));
    }
    if text.len() >= 10 && text.as_bytes().get(4) == Some(&b'-') {
        return parse_rfc3339(text).ok_or_else(|| {
            format!("{text:?} is not an RFC 3339 timestamp like 2026-11-22T02:49:43Z or 2026-11-22T02:49:43.906+01:00")
        });
    }
    let ago = parse_duration(text).map_err(|_| {
        format!("{text:?} is not a time: use a duration ago (10m, 2h, 3d), an RFC 3339 timestamp or unix milliseconds")
    })?;
    Ok(now.saturating_sub(u64::try_from(ago.as_millis()).unwrap_or(u64::MAX)))
}

/// `YYYY-MM-DD[T ]HH:MM:SS[.fraction](Z|±HH:MM)` as unix milliseconds.
fn parse_rfc3339(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|byte| byte.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    if bytes.get(7) != Some(&b'-') || !matches!(bytes.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if bytes.get(13) != Some(&b':') || bytes.get(16) != Some(&b':') {
        return None;
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = text.get(19..)?;
    let mut millis = 0i64;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let padded = format!("{:0<3}", &fraction[..digits.min(3)]);
        millis = padded.parse().ok()?;
        rest = &fraction[digits..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes().get(3) != Some(&b':') {
                return None;
            }
            let hours: i64 = rest.get(1..3)?.parse().ok()?;
            let minutes: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (hours * 60 + minutes)
        }
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    u64::try_from(seconds * 1000 + millis).ok()
}

/// Howard Hinnant's days-from-civil: days since 1970-01-01 of a proleptic
/// Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_count_back_from_now() {
        let now = 10_000_000;
        assert_eq!(parse_instant_at("10m", now), Ok(now - 600_000));
        assert_eq!(parse_instant_at("2h", now), Ok(now - 7_200_000));
        assert_eq!(parse_instant_at("30s", now), Ok(now - 30_000));
        assert!(parse_instant_at("3w", now).is_err());
    }

    #[test]
    fn rfc3339_timestamps_and_unix_millis_are_instants() {
        assert_eq!(parse_instant_at("2025-11-22T08:26:40.123Z", 0), Ok(1_763_800_000_123));
        assert_eq!(
            parse_instant_at("2025-11-22 09:26:40.123+01:00", 0),
            Ok(1_763_800_000_123)
        );
        assert_eq!(parse_instant_at("2000-02-29T00:00:00Z", 0), Ok(951_782_400_000));
        assert_eq!(parse_instant_at("1763800000123", 0), Ok(1_763_800_000_123));
        assert!(parse_instant_at("2025-13-01T00:00:00Z", 0).is_err());
        assert!(parse_instant_at("2025-11-22T08:26:40", 0).is_err());
    }
}
