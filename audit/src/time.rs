//! RFC 3339 UTC timestamps without a date-time dependency.

/// `seconds`/`nanos` since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmmmmmZ` (microseconds, UTC).
/// Fixed width, so timestamps compare correctly as strings.
pub fn rfc3339(seconds: i64, nanos: i32) -> String {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60,
        (nanos.max(0) / 1000)
    )
}

/// Now, as [`rfc3339`].
pub fn now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_nanos() as i32)
}

// Howard Hinnant's days-to-civil algorithm (public domain description).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Normalise a user-given bound (`2026-12-01`, `2026-12-01T10:00:00Z`, ...) to a prefix that
/// compares with [`rfc3339`] strings. Only UTC (`Z`) is accepted.
pub fn parse_bound(s: &str) -> Result<String, String> {
    let t = s.trim_end_matches('Z');
    let ok = t.len() >= 10
        && t.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b'T',
            13 | 16 => b == b':',
            19 => b == b'.',
            _ => b.is_ascii_digit(),
        });
    if !ok || (s.len() > 10 && !s.ends_with('Z')) {
        return Err(format!(
            "`{s}`: expected a UTC time like 2026-12-01 or 2026-12-01T10:00:00Z"
        ));
    }
    Ok(t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339(1_798_761_600, 123_456_789), "2027-01-01T00:00:00.123456Z");
        assert_eq!(rfc3339(951_782_400, 0), "2000-02-29T00:00:00.000000Z");
    }

    #[test]
    fn bounds() {
        assert_eq!(parse_bound("2026-12-01").unwrap(), "2026-12-01");
        assert_eq!(parse_bound("2026-12-01T10:00:00Z").unwrap(), "2026-12-01T10:00:00");
        assert!(parse_bound("2026-12-01T10:00:00+02:00").is_err());
        assert!(parse_bound("yesterday").is_err());
    }
}
