//! Fault injection (all off by default), to prove the functions' idempotency and the queues' redelivery the
//! hard way: deliver every batch twice, kill the function process at a random point of an invocation, delay.

use std::time::Duration;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct Faults {
    /// Invoke every batch a second time after the first (an exaggerated at-least-once delivery); a message
    /// is deleted only when both deliveries succeeded.
    #[arg(long, env = "NEXUS_FAULT_DUPLICATE_DELIVERY")]
    pub duplicate_delivery: bool,
    /// Probability (0–1) that the function process is killed at a random point during an invocation.
    #[arg(long, env = "NEXUS_FAULT_KILL_PROBABILITY", default_value_t = 0.0)]
    pub kill_probability: f64,
    /// Delay before every invocation, in milliseconds.
    #[arg(long, env = "NEXUS_FAULT_DELAY_MS", default_value_t = 0)]
    pub delay_ms: u64,
}

impl Faults {
    pub fn any(&self) -> bool {
        self.duplicate_delivery || self.kill_probability > 0.0 || self.delay_ms > 0
    }

    /// When to kill the process during this invocation, if at all: a random point within the first
    /// `window` (the function's own handlers finish well within a second or two).
    pub fn kill_point(&self, window: Duration, rng: &mut fastrand::Rng) -> Option<Duration> {
        (self.kill_probability > 0.0 && rng.f64() < self.kill_probability).then(|| window.mul_f64(rng.f64()))
    }

    pub fn delay(&self) -> Option<Duration> {
        (self.delay_ms > 0).then(|| Duration::from_millis(self.delay_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default() {
        let faults = Faults::default();
        assert!(!faults.any());
        let mut rng = fastrand::Rng::with_seed(7);
        assert!((0..1000).all(|_| faults.kill_point(Duration::from_secs(1), &mut rng).is_none()));
        assert_eq!(faults.delay(), None);
    }

    #[test]
    fn kills_at_the_configured_rate_within_the_window() {
        let faults = Faults { kill_probability: 0.25, ..Faults::default() };
        let mut rng = fastrand::Rng::with_seed(42);
        let window = Duration::from_millis(800);
        let points: Vec<Duration> = (0..10_000).filter_map(|_| faults.kill_point(window, &mut rng)).collect();
        assert!((2_200..2_800).contains(&points.len()), "about a quarter: {}", points.len());
        assert!(points.iter().all(|p| *p < window));
    }
}
