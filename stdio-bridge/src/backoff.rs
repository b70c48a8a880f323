//! Restart delays: 100 ms doubling to 10 s; a child that stayed up 30 s starts over at 100 ms.

use std::time::Duration;

pub const INITIAL: Duration = Duration::from_millis(100);
pub const MAX: Duration = Duration::from_secs(10);
pub const RESET_AFTER: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: INITIAL }
    }
}

impl Backoff {
    /// The delay before the next start, given how long the child that just ended was up (a
    /// child that never finished its handshake counts as up for no time).
    pub fn after(&mut self, uptime: Duration) -> Duration {
        if uptime >= RESET_AFTER {
            self.next = INITIAL;
        }
        let delay = self.next;
        self.next = (self.next * 2).min(MAX);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_and_resets_after_a_long_run() {
        let mut b = Backoff::default();
        let quick = Duration::from_millis(5);
        let delays: Vec<u64> = (0..9).map(|_| b.after(quick).as_millis() as u64).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]);
        assert_eq!(
            b.after(RESET_AFTER - Duration::from_millis(1)),
            MAX,
            "not up long enough"
        );
        assert_eq!(b.after(RESET_AFTER), INITIAL, "stayed up: start over");
        assert_eq!(b.after(quick), INITIAL * 2);
    }
}
