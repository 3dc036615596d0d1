//! Chaos settings for the services, changeable while the system runs: per service a failure probability
//! (the command fails and is answered as transient), added latency, and a crash probability (the process dies
//! mid-command), and the decision they make for one command. Stored as one item of the settings table
//! (`nexus chaos` and the tests write it); the Lambda edge applies them. Off unless set.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceChaos {
    /// Probability (0–1) that a command fails with a transient error.
    pub failure_rate: f64,
    /// Added before every command, in milliseconds (at most [`MAX_LATENCY_MS`]).
    pub latency_ms: u64,
    /// Probability (0–1) that the process crashes while handling a command.
    pub crash_rate: f64,
}

/// The most latency a command can be given (a function also stops short of its own deadline).
pub const MAX_LATENCY_MS: u64 = 60_000;

/// The services that honour chaos settings (`order` is order-intake: submissions and the saga's own steps).
pub const SERVICES: [&str; 5] = ["order", "inventory", "payment", "shipping", "notification"];

/// The stored settings: service name (one of [`SERVICES`]) → its chaos.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ChaosSettings {
    pub services: BTreeMap<String, ServiceChaos>,
}

#[derive(Debug, thiserror::Error)]
#[error("chaos: injected transient failure in {service}")]
pub struct InjectedFailure {
    pub service: &'static str,
}

/// How long the functions cache the settings: changes take effect within this.
pub const CACHE_TTL: Duration = Duration::from_secs(3);

/// What to do for one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Proceed,
    Fail,
    Crash,
}

impl ServiceChaos {
    /// Whether these settings are within bounds (rates 0–1, latency at most [`MAX_LATENCY_MS`]): for
    /// settings that come from outside a typed parser, such as the dashboard's form.
    pub fn check(&self) -> Result<(), String> {
        for (name, rate) in [("failureRate", self.failure_rate), ("crashRate", self.crash_rate)] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} {rate} is not between 0 and 1"));
            }
        }
        if self.latency_ms > MAX_LATENCY_MS {
            return Err(format!("latencyMs {} is over {MAX_LATENCY_MS}", self.latency_ms));
        }
        Ok(())
    }

    /// Decides from two uniform draws in [0, 1).
    pub fn decide(&self, crash_draw: f64, failure_draw: f64) -> Decision {
        if crash_draw < self.crash_rate {
            Decision::Crash
        } else if failure_draw < self.failure_rate {
            Decision::Fail
        } else {
            Decision::Proceed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_follow_the_rates() {
        let chaos = ServiceChaos { failure_rate: 0.2, latency_ms: 0, crash_rate: 0.05 };
        assert_eq!(chaos.decide(0.01, 0.9), Decision::Crash);
        assert_eq!(chaos.decide(0.5, 0.1), Decision::Fail);
        assert_eq!(chaos.decide(0.5, 0.3), Decision::Proceed);
        assert_eq!(ServiceChaos::default().decide(0.0, 0.0), Decision::Proceed, "off by default");
    }

    #[test]
    fn settings_out_of_bounds_are_refused() {
        assert!(ServiceChaos { failure_rate: 0.5, latency_ms: MAX_LATENCY_MS, crash_rate: 1.0 }.check().is_ok());
        assert!(ServiceChaos { failure_rate: 1.5, ..Default::default() }.check().is_err());
        assert!(ServiceChaos { crash_rate: f64::NAN, ..Default::default() }.check().is_err());
        assert!(ServiceChaos { latency_ms: MAX_LATENCY_MS + 1, ..Default::default() }.check().is_err());
    }
}
