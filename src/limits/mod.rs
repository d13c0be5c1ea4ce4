//! Limit arithmetic shared by the actors that enforce limits: sliding windows
//! of request counts, independent of who owns them or where they persist.

pub mod window;

pub use window::RateWindow;

/// Milliseconds since the Unix epoch: windows persist across restarts, so
/// they count in wall-clock time.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
