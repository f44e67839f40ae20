//! The simulated clock: controllers read time from here, never from the wall.
//!
//! By default it runs `speed` times faster than the wall clock so a rolling
//! restart settles in well under a second; tests can pause it and step it.

use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};

#[derive(Debug, Clone)]
pub struct SimClock {
    /// Simulated time at `anchor_wall`.
    anchor_sim: DateTime<Utc>,
    anchor_wall: Instant,
    /// Simulated seconds per wall second; 0 when paused.
    speed: f64,
}

impl SimClock {
    pub fn new(start: DateTime<Utc>, speed: f64) -> Self {
        SimClock {
            anchor_sim: start,
            anchor_wall: Instant::now(),
            speed,
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        let wall = self.anchor_wall.elapsed().as_secs_f64() * self.speed;
        self.anchor_sim + chrono::Duration::microseconds((wall * 1_000_000.0) as i64)
    }

    /// RFC 3339 with seconds, as Kubernetes writes timestamps.
    pub fn now_rfc3339(&self) -> String {
        self.now().to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    /// Changes the speed from now on (0 pauses).
    pub fn set_speed(&mut self, speed: f64) {
        self.anchor_sim = self.now();
        self.anchor_wall = Instant::now();
        self.speed = speed.max(0.0);
    }

    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// Moves simulated time forward by `by`, whatever the speed.
    pub fn advance(&mut self, by: Duration) {
        self.anchor_sim = self.now() + chrono::Duration::from_std(by).unwrap_or_default();
        self.anchor_wall = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paused_clock_moves_only_when_advanced() {
        let start = Utc::now();
        let mut clock = SimClock::new(start, 0.0);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(clock.now(), start);
        clock.advance(Duration::from_secs(30));
        assert_eq!(clock.now(), start + chrono::Duration::seconds(30));
    }
}
