//! The generated projects' calendar: the year tasks are made in, and the timestamps
//! they carry, written without a date library so the bytes stay the same everywhere.

/// 2024-01-01T00:00:00Z.
pub(crate) const YEAR_START: i64 = 1_704_067_200;
pub(crate) const DAY: i64 = 86_400;

/// Seconds since the Unix epoch as RFC 3339 UTC (`2024-03-05T12:34:56Z`).
pub(crate) fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(DAY);
    let rem = secs.rem_euclid(DAY);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(YEAR_START), "2024-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(YEAR_START + 59 * DAY + 3_723),
            "2024-02-29T01:02:03Z"
        );
        assert_eq!(rfc3339(YEAR_START + 366 * DAY - 1), "2024-12-31T23:59:59Z");
    }
}
