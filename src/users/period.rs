//! Quota periods on the UTC calendar: a daily quota starts over at midnight
//! UTC, a weekly one on Monday, a monthly one on the 1st.

use chrono::{Datelike, Duration, TimeZone, Utc};

use super::model::Period;

/// Unix seconds when the period containing `now` started (0 for `Never`).
pub fn period_start(period: Period, now: u64) -> u64 {
    let Some(at) = Utc.timestamp_opt(now as i64, 0).single() else {
        return 0;
    };
    let midnight = at.date_naive().and_hms_opt(0, 0, 0).map(|d| d.and_utc());
    let start = match period {
        Period::Never => return 0,
        Period::Daily => midnight,
        Period::Weekly => {
            midnight.map(|m| m - Duration::days(i64::from(at.weekday().num_days_from_monday())))
        }
        Period::Monthly => at
            .date_naive()
            .with_day(1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc()),
    };
    start.map_or(0, |s| s.timestamp().max(0) as u64)
}

/// Unix seconds when the period containing `now` ends (`None` for `Never`).
pub fn period_end(period: Period, now: u64) -> Option<u64> {
    let start = period_start(period, now);
    let start_at = Utc.timestamp_opt(start as i64, 0).single()?;
    let end = match period {
        Period::Never => return None,
        Period::Daily => start_at + Duration::days(1),
        Period::Weekly => start_at + Duration::days(7),
        Period::Monthly => {
            let date = start_at.date_naive();
            let (year, month) = match date.month() {
                12 => (date.year() + 1, 1),
                m => (date.year(), m + 1),
            };
            chrono::NaiveDate::from_ymd_opt(year, month, 1)?
                .and_hms_opt(0, 0, 0)?
                .and_utc()
        }
    };
    Some(end.timestamp().max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-22 (a Sunday) 15:30:00 UTC
    const NOW: u64 = 1_795_361_400;

    #[test]
    fn periods() {
        assert_eq!(period_start(Period::Daily, NOW), 1_795_305_600); // 2026-11-22 00:00
        assert_eq!(period_end(Period::Daily, NOW), Some(1_795_392_000));
        assert_eq!(period_start(Period::Weekly, NOW), 1_794_787_200); // Monday 2026-11-16
        assert_eq!(period_end(Period::Weekly, NOW), Some(1_795_392_000)); // Monday 2026-11-23
        assert_eq!(period_start(Period::Monthly, NOW), 1_793_491_200); // 2026-11-01
        assert_eq!(period_end(Period::Monthly, NOW), Some(1_796_083_200)); // 2026-12-01
        assert_eq!(period_start(Period::Never, NOW), 0);
        assert_eq!(period_end(Period::Never, NOW), None);
    }
}
