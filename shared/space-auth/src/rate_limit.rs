//! Fixed one-minute windows. The store keeps one atomic counter per key and window; this
//! module only does the arithmetic, with `now` passed in.

use chrono::{DateTime, Utc};

/// Requests per minute for a key minted without a limit of its own.
pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 100;
/// Window length in seconds.
pub const WINDOW_SECONDS: i64 = 60;

/// The window a request falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateWindow {
    /// Unix seconds at which the window opened; part of the counter's key.
    pub start: i64,
    /// Seconds until the window closes (at least 1).
    pub resets_in: i64,
}

impl RateWindow {
    pub fn at(now: DateTime<Utc>) -> RateWindow {
        let seconds = now.timestamp();
        let start = seconds - seconds.rem_euclid(WINDOW_SECONDS);
        RateWindow {
            start,
            resets_in: (start + WINDOW_SECONDS - seconds).max(1),
        }
    }

    /// When the counter may be forgotten: a little after the window closes.
    pub fn expires_at(&self) -> i64 {
        self.start + 2 * WINDOW_SECONDS
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
    fn the_hundred_and_first_request_is_refused() {
        let window = RateWindow::at(Utc::now());
        assert!(window.decide(100, 100).allowed);
        let refused = window.decide(101, 100);
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
    }
}
