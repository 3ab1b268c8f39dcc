//! The MS-DOS date and time ZIP gives each entry.

/// MS-DOS (time, date) for a Unix time in UTC, as ZIP stores it: two-second resolution,
/// years 1980–2107. Times outside that range are clamped to its ends.
pub(super) fn dos_date_time(unix_secs: u64) -> (u16, u16) {
    const EARLIEST: (u16, u16) = (0, (1 << 5) | 1); // 1980-01-01 00:00:00
    const LATEST: (u16, u16) = (
        (23 << 11) | (59 << 5) | (58 / 2),
        (127 << 9) | (12 << 5) | 31, // 2107-12-31 23:59:58
    );
    let days = unix_secs / 86_400;
    let secs_of_day = unix_secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    if year < 1980 {
        return EARLIEST;
    }
    if year > 2107 {
        return LATEST;
    }
    let hour = secs_of_day / 3600;
    let minute = secs_of_day % 3600 / 60;
    let second = secs_of_day % 60;
    let time = (hour << 11) | (minute << 5) | (second / 2);
    let date = ((year - 1980) << 9) | (month << 5) | day;
    // Both fit in 16 bits for years 1980–2107, checked above.
    (time as u16, date as u16)
}

/// (year, month 1–12, day 1–31) of the day `days` after 1970-01-01, proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// 2024-02-29T13:45:59Z.
    const MODIFIED: u64 = 1_709_214_359;
    const DOS_TIME: u16 = (13 << 11) | (45 << 5) | 29;
    const DOS_DATE: u16 = (44 << 9) | (2 << 5) | 29;

    #[test]
    fn converts_unix_time_to_dos_time() {
        assert_eq!(dos_date_time(MODIFIED), (DOS_TIME, DOS_DATE));
        // 1980-01-01T00:00:00Z, the first representable moment.
        assert_eq!(dos_date_time(315_532_800), (0, (1 << 5) | 1));
        // 2000-02-29T00:00:01Z: a leap day of a year divisible by 400; seconds round down.
        assert_eq!(dos_date_time(951_782_401), (0, (20 << 9) | (2 << 5) | 29));
        // 2024-01-01T00:00:00Z.
        assert_eq!(dos_date_time(1_704_067_200), (0, 0x5821));
        // 2107-12-31T23:59:59Z, the last representable second (stored as :58).
        let latest = ((23 << 11) | (59 << 5) | 29, (127 << 9) | (12 << 5) | 31);
        assert_eq!(dos_date_time(4_354_819_199), latest);
        // Outside 1980–2107: clamped.
        assert_eq!(dos_date_time(315_532_799), (0, (1 << 5) | 1));
        assert_eq!(dos_date_time(0), (0, (1 << 5) | 1));
        assert_eq!(dos_date_time(4_354_819_200), latest);
        assert_eq!(dos_date_time(u64::MAX), latest);
    }

    #[test]
    fn civil_dates_match_known_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(19_783), (2024, 3, 1));
    }
}
