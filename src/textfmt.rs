//! Text written for every request: the request id, the client's IPv4
//! address and the usage record's UTC timestamp. Written by hand rather than
//! through `core::fmt` (and chrono's formatter): about 1,900 fewer
//! instructions a request for the three (BENCHMARKS.md, hot spot 11). The
//! output is byte for byte what `format!`, `Display` and chrono's
//! `to_rfc3339_opts(Millis, true)` give (tested below). The hex writers
//! also serve the other generated ids (mock and translated replies) and the
//! key digests.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `value`'s low `digits` hex digits, zero-padded, lowercase.
pub fn push_hex(out: &mut String, value: u64, digits: u32) {
    for shift in (0..digits).rev() {
        out.push(HEX[((value >> (shift * 4)) & 0xf) as usize] as char);
    }
}

/// 24 random hex digits: the unique part of request and reply ids.
pub fn push_random_hex(out: &mut String) {
    push_hex(out, fastrand::u64(..), 16);
    push_hex(out, u64::from(fastrand::u32(..)), 8);
}

/// [`push_random_hex`] with `prefix` in front.
pub fn random_id(prefix: &str) -> String {
    let mut id = String::with_capacity(prefix.len() + 24);
    id.push_str(prefix);
    push_random_hex(&mut id);
    id
}

/// Bytes as lowercase hex, two digits each.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    bytes
        .iter()
        .for_each(|byte| push_hex(&mut out, u64::from(*byte), 2));
    out
}

/// The address as `Display` writes it; IPv4 without `core::fmt`.
pub fn ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let mut out = String::with_capacity(15);
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                push_decimal(&mut out, u64::from(octet), 1);
            }
            out
        }
        IpAddr::V6(v6) => v6.to_string(),
    }
}

/// `time` as RFC 3339 in UTC with milliseconds and a `Z`:
/// `2026-12-04T11:13:00.123Z` (times before 1970 are written as 1970).
pub fn rfc3339_millis(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since.as_secs();
    let (year, month, day) = civil_from_days(seconds / 86_400);
    let of_day = seconds % 86_400;
    let mut out = String::with_capacity(24);
    push_decimal(&mut out, year, 4);
    out.push('-');
    push_decimal(&mut out, month, 2);
    out.push('-');
    push_decimal(&mut out, day, 2);
    out.push('T');
    push_decimal(&mut out, of_day / 3600, 2);
    out.push(':');
    push_decimal(&mut out, of_day / 60 % 60, 2);
    out.push(':');
    push_decimal(&mut out, of_day % 60, 2);
    out.push('.');
    push_decimal(&mut out, u64::from(since.subsec_millis()), 3);
    out.push('Z');
    out
}

/// `value` in decimal, zero-padded to at least `width` digits.
fn push_decimal(out: &mut String, mut value: u64, width: usize) {
    let mut digits = [0u8; 20];
    let mut len = 0;
    while value > 0 || len < width {
        digits[len] = b'0' + (value % 10) as u8;
        value /= 10;
        len += 1;
    }
    for digit in digits[..len].iter().rev() {
        out.push(*digit as char);
    }
}

/// (year, month, day) of a day counted from 1970-01-01, in the proleptic
/// Gregorian calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_match_chrono() {
        let mut seconds: u64 = 0;
        // Every day boundary and leap day from 1970 to about 2200, at a
        // moving time of day, plus the milliseconds' edges.
        while seconds < 7_300_000_000 {
            for millis in [0, 7, 999] {
                let time = UNIX_EPOCH + Duration::from_millis(seconds * 1000 + millis);
                let expected = chrono::DateTime::<chrono::Utc>::from(time)
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                assert_eq!(rfc3339_millis(time), expected);
            }
            seconds += 86_399 + seconds % 7;
        }
        assert_eq!(rfc3339_millis(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn addresses_match_display() {
        for text in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.3.255",
            "255.255.255.255",
            "::1",
            "2001:db8::7",
        ] {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(super::ip(ip), ip.to_string());
        }
    }

    #[test]
    fn hex_is_zero_padded() {
        let mut out = String::new();
        push_hex(&mut out, 0xab, 16);
        push_hex(&mut out, u64::from(u32::MAX), 8);
        assert_eq!(out, format!("{:016x}{:08x}", 0xab, u32::MAX));
        assert_eq!(hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
    }

    #[test]
    fn random_ids_are_prefixed_hex() {
        let (a, b) = (random_id("req_"), random_id("req_"));
        assert_eq!(a.len(), 28);
        assert!(a.starts_with("req_"));
        assert!(a[4..]
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }
}
