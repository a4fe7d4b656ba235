//! Fixed windows (a minute for requests, longer for budgets like a booking page's bookings
//! per hour). The store keeps one atomic counter per key and window; this module only does
//! the arithmetic, with `now` passed in.

use chrono::{DateTime, Utc};

/// Requests per minute for a key minted without a limit of its own.
pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 100;
/// Window length in seconds.
pub const WINDOW_SECONDS: i64 = 60;
/// Failed key lookups (unknown, revoked or expired keys) one client address may make per
/// minute before it is refused without a lookup: enough for a client whose key was just
/// rotated, too few to try tokens at any useful rate.
pub const FAILED_AUTH_PER_MINUTE: u32 = 20;

/// The window a request falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateWindow {
    /// Unix seconds at which the window opened; part of the counter's key.
    pub start: i64,
    /// Seconds until the window closes (at least 1).
    pub resets_in: i64,
    /// The window's length in seconds.
    pub length: i64,
}

impl RateWindow {
    /// The one-minute request window `now` falls in.
    pub fn at(now: DateTime<Utc>) -> RateWindow {
        RateWindow::of(now, WINDOW_SECONDS)
    }

    /// The window of `length` seconds (aligned to the epoch) that `now` falls in.
    pub fn of(now: DateTime<Utc>, length: i64) -> RateWindow {
        let length = length.max(1);
        let seconds = now.timestamp();
        let start = seconds - seconds.rem_euclid(length);
        RateWindow {
            start,
            resets_in: (start + length - seconds).max(1),
            length,
        }
    }

    /// When the counter may be forgotten: a little after the window closes.
    pub fn expires_at(&self) -> i64 {
        self.start + 2 * self.length
    }

    /// Judges a request given the counter value *after* counting it.
    pub fn decide(&self, count: u64, limit: u32) -> RateDecision {
        let limit = u64::from(limit);
        RateDecision {
            allowed: count <= limit,
            limit,
            remaining: limit.saturating_sub(count),
            resets_in: self.resets_in,
        }
    }
}

/// The verdict for one request, with what the `RateLimit` headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    pub resets_in: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn windows_align_to_the_minute() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 42).unwrap();
        let window = RateWindow::at(now);
        assert_eq!(window.start % 60, 0);
        assert_eq!(window.resets_in, 18);
    }

    #[test]
    fn longer_windows_align_to_their_length() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 10, 59, 30).unwrap();
        let hour = RateWindow::of(now, 3600);
        assert_eq!(hour.start % 3600, 0);
        assert_eq!(hour.resets_in, 30);
        assert_eq!(hour.expires_at(), hour.start + 7200);
    }

    #[test]
    fn the_hundred_and_first_request_is_refused() {
        let window = RateWindow::at(Utc::now());
        assert!(window.decide(100, 100).allowed);
        let refused = window.decide(101, 100);
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
    }
}
