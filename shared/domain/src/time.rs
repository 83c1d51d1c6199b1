//! Times are stored in UTC and shown in Europe/Istanbul.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Europe::Istanbul;

/// RFC 3339 with milliseconds and `Z`: sortable as a string, so it can sit in sort keys.
pub fn to_sortable(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// "24.11.2026 15:04" in Istanbul time, as Turkish users read dates.
pub fn to_istanbul_display(at: &DateTime<Utc>) -> String {
    at.with_timezone(&Istanbul)
        .format("%d.%m.%Y %H:%M")
        .to_string()
}

/// Today's date in Istanbul (reports: "this month" is the Istanbul month).
pub fn istanbul_today(now: &DateTime<Utc>) -> chrono::NaiveDate {
    now.with_timezone(&Istanbul).date_naive()
}

/// The UTC instant an Istanbul day starts (Turkey keeps UTC+3 all year).
pub fn istanbul_day_start(day: chrono::NaiveDate) -> Option<DateTime<Utc>> {
    day.and_hms_opt(0, 0, 0)?
        .and_local_timezone(Istanbul)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// Unix seconds as partners send them (WhatsApp: a JSON string).
pub fn from_unix_seconds(text: &str) -> Option<DateTime<Utc>> {
    let secs: i64 = text.trim().parse().ok()?;
    Utc.timestamp_opt(secs, 0).single()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_istanbul_day_starts_at_21_utc_the_day_before() {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        assert_eq!(
            istanbul_day_start(day).unwrap().to_rfc3339(),
            "2026-10-31T21:00:00+00:00"
        );
        let late = Utc.with_ymd_and_hms(2026, 11, 30, 22, 0, 0).unwrap();
        assert_eq!(istanbul_today(&late).to_string(), "2026-12-01");
    }

    #[test]
    fn istanbul_is_utc_plus_three_all_year() {
        let at = Utc.with_ymd_and_hms(2026, 11, 24, 12, 4, 0).unwrap();
        assert_eq!(to_istanbul_display(&at), "24.11.2026 15:04");
        let summer = Utc.with_ymd_and_hms(2026, 7, 1, 21, 30, 0).unwrap();
        assert_eq!(to_istanbul_display(&summer), "02.07.2026 00:30");
    }

    #[test]
    fn sortable_keeps_order_and_utc() {
        let a = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(to_sortable(&a), "2026-01-02T03:04:05.000Z");
        assert_eq!(from_unix_seconds("1767323045"), Some(a));
        assert_eq!(from_unix_seconds("soon"), None);
    }
}
