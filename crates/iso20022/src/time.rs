//! Ledger times (ms since the Unix epoch, UTC) as ISO 20022 `ISODate` and `ISODateTime`.
//!
//! The conversion is done here, with integer arithmetic only, so that the crate needs no
//! calendar dependency and the output is the same on every machine and in every time zone.

use crate::ExportError;

/// The last instant with a four-digit year: 9999-12-31T23:59:59.999Z. ISO 20022 dates are
/// `xs:date` / `xs:dateTime`, which allow longer years, but receivers commonly do not.
pub(crate) const MS_MAX: u64 = 253_402_300_799_999;

const MS_PER_DAY: u64 = 86_400_000;

/// A UTC calendar instant with millisecond precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UtcTime {
    year: u64,
    month: u64,
    day: u64,
    ms_of_day: u64,
}

impl UtcTime {
    /// The instant `ms` milliseconds after 1970-01-01T00:00:00Z, if its year has four digits.
    pub(crate) fn from_ms(ms: u64) -> Option<Self> {
        if ms > MS_MAX {
            return None;
        }
        let (year, month, day) = civil_from_days(ms / MS_PER_DAY);
        Some(Self {
            year,
            month,
            day,
            ms_of_day: ms % MS_PER_DAY,
        })
    }

    /// Like [`UtcTime::from_ms`], with the error naming `field`.
    pub(crate) fn parse(field: &'static str, ms: u64) -> Result<Self, ExportError> {
        Self::from_ms(ms).ok_or(ExportError::TimeOutOfRange { field, ms })
    }

    /// `YYYY-MM-DD`: an ISO 20022 `ISODate` (the UTC date).
    pub(crate) fn iso_date(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    /// `YYYY-MM-DDThh:mm:ss.sssZ`: an ISO 20022 `ISODateTime` in UTC. The milliseconds are
    /// always written, so that every time has the same shape and none is rounded.
    pub(crate) fn iso_date_time(&self) -> String {
        let seconds = self.ms_of_day / 1000;
        format!(
            "{}T{:02}:{:02}:{:02}.{:03}Z",
            self.iso_date(),
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60,
            self.ms_of_day % 1000
        )
    }
}

/// Year, month (1-12) and day (1-31) of the proleptic Gregorian calendar, `days` days after
/// 1970-01-01. Howard Hinnant's `civil_from_days`, restricted to dates from 1970 on, where every
/// intermediate value is non-negative.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Count from 0000-03-01 so that the leap day is the last day of a year.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097; // [0, 146096]
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365; // [0, 399]
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100); // [0, 365]
    let month_from_march = (5 * day_of_year + 2) / 153; // [0, 11]
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1; // [1, 31]
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> String {
        UtcTime::from_ms(ms).unwrap().iso_date_time()
    }

    /// Vectors checked against GNU `date -u -d @SECONDS`.
    #[test]
    fn known_instants() {
        let vectors = [
            (0, "1970-01-01T00:00:00.000Z"),
            (94_694_399_000, "1972-12-31T23:59:59.000Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (951_868_799_999, "2000-02-29T23:59:59.999Z"),
            (1_700_000_000_123, "2023-11-14T22:13:20.123Z"),
            (1_709_164_800_000, "2024-02-29T00:00:00.000Z"),
            (1_709_251_199_000, "2024-02-29T23:59:59.000Z"),
            (1_735_603_200_000, "2024-12-31T00:00:00.000Z"),
            (2_147_483_647_000, "2038-01-19T03:14:07.000Z"),
            (4_102_444_800_000, "2100-01-01T00:00:00.000Z"),
            (4_107_456_000_000, "2100-02-28T00:00:00.000Z"),
            // 2100 is not a leap year: the day after 28 February is 1 March.
            (4_107_542_400_000, "2100-03-01T00:00:00.000Z"),
            (MS_MAX, "9999-12-31T23:59:59.999Z"),
        ];
        for (ms, want) in vectors {
            assert_eq!(at(ms), want, "ms = {ms}");
        }
    }

    #[test]
    fn date_is_the_utc_day() {
        let t = UtcTime::from_ms(951_868_799_999).unwrap();
        assert_eq!(t.iso_date(), "2000-02-29");
        assert_eq!(
            UtcTime::from_ms(951_868_800_000).unwrap().iso_date(),
            "2000-03-01"
        );
    }

    #[test]
    fn five_digit_years_are_refused() {
        assert_eq!(UtcTime::from_ms(MS_MAX + 1), None);
        assert_eq!(UtcTime::from_ms(u64::MAX), None);
        assert_eq!(
            UtcTime::parse("at_ms", MS_MAX + 1),
            Err(ExportError::TimeOutOfRange {
                field: "at_ms",
                ms: MS_MAX + 1
            })
        );
    }

    /// Every day from 1970 to 2500 follows the one before it: the day of the month increases
    /// by one or the month rolls over on its last day, and February has 29 days exactly in
    /// leap years.
    #[test]
    fn consecutive_days_are_consistent() {
        let is_leap =
            |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
        let month_len = |y: u64, m: u64| match m {
            2 if is_leap(y) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let mut prev = civil_from_days(0);
        assert_eq!(prev, (1970, 1, 1));
        for days in 1..(531 * 366) {
            let next = civil_from_days(days);
            let (y, m, d) = prev;
            let want = if d < month_len(y, m) {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
            assert_eq!(next, want, "days = {days}");
            prev = next;
        }
    }
}
