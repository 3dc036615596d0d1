//! Chaos settings for the services, changeable while the system runs: per service a failure probability
//! (the command fails and is redelivered), added latency, and a crash probability (the process dies
//! mid-command). Stored as one DynamoDB item (`nexus chaos` and tests write it), read with a short cache,
//! and every injected fault is logged. Off unless set.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::ports::PortResult;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceChaos {
    /// Probability (0–1) that a command fails with a transient error.
    pub failure_rate: f64,
    /// Added before every command, in milliseconds.
    pub latency_ms: u64,
    /// Probability (0–1) that the process crashes while handling a command.
    pub crash_rate: f64,
}

/// The services that honour chaos settings (`order` is order-intake: submissions and the saga's own steps).
pub const SERVICES: [&str; 5] = ["order", "inventory", "payment", "shipping", "notification"];

/// The stored settings: service name (one of [`SERVICES`]) → its chaos.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ChaosSettings {
    pub services: BTreeMap<String, ServiceChaos>,
}

pub trait ChaosSource: Send + Sync {
    fn load(&self) -> impl Future<Output = PortResult<ChaosSettings>> + Send;
}

#[derive(Debug, thiserror::Error)]
#[error("chaos: injected transient failure in {service}")]
pub struct InjectedFailure {
    pub service: &'static str,
}

/// How long settings are cached: changes take effect within this.
pub const CACHE_TTL: Duration = Duration::from_secs(3);

pub struct Chaos<S> {
    source: S,
    service: &'static str,
    cache: Mutex<Option<(Instant, ServiceChaos)>>,
}

/// What to do for one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Proceed,
    Fail,
    Crash,
}

impl ServiceChaos {
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

impl<S: ChaosSource> Chaos<S> {
    pub fn new(source: S, service: &'static str) -> Self {
        Self { source, service, cache: Mutex::new(None) }
    }

    async fn current(&self) -> ServiceChaos {
        let cached = self.cache.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some((_, chaos)) = cached.filter(|(at, _)| at.elapsed() < CACHE_TTL) {
            return chaos;
        }
        let chaos = match self.source.load().await {
            Ok(settings) => settings.services.get(self.service).cloned().unwrap_or_default(),
            Err(e) => {
                // Chaos must never cause real failures: unreadable settings mean no chaos.
                tracing::warn!(error = %e, "chaos settings unreadable; none applied");
                ServiceChaos::default()
            }
        };
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), chaos.clone()));
        chaos
    }

    /// Applies the service's chaos before a command: latency, then maybe a crash or a transient failure.
    pub async fn before_command(&self) -> Result<(), InjectedFailure> {
        let chaos = self.current().await;
        if chaos.latency_ms > 0 {
            tracing::info!(latencyMs = chaos.latency_ms, "chaos: added latency");
            tokio::time::sleep(Duration::from_millis(chaos.latency_ms)).await;
        }
        match chaos.decide(fastrand::f64(), fastrand::f64()) {
            Decision::Proceed => Ok(()),
            Decision::Fail => {
                tracing::warn!(failureRate = chaos.failure_rate, "chaos: injected transient failure");
                Err(InjectedFailure { service: self.service })
            }
            Decision::Crash => {
                tracing::error!(crashRate = chaos.crash_rate, "chaos: crashing the process");
                std::process::abort()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(ChaosSettings);
    impl ChaosSource for Fixed {
        async fn load(&self) -> PortResult<ChaosSettings> {
            Ok(self.0.clone())
        }
    }

    #[test]
    fn decisions_follow_the_rates() {
        let chaos = ServiceChaos { failure_rate: 0.2, latency_ms: 0, crash_rate: 0.05 };
        assert_eq!(chaos.decide(0.01, 0.9), Decision::Crash);
        assert_eq!(chaos.decide(0.5, 0.1), Decision::Fail);
        assert_eq!(chaos.decide(0.5, 0.3), Decision::Proceed);
        assert_eq!(ServiceChaos::default().decide(0.0, 0.0), Decision::Proceed, "off by default");
    }

    #[tokio::test]
    async fn a_service_without_settings_is_left_alone_and_a_failing_one_fails() {
        let mut settings = ChaosSettings::default();
        settings.services.insert("payment".into(), ServiceChaos { failure_rate: 1.0, ..ServiceChaos::default() });
        assert!(Chaos::new(Fixed(settings.clone()), "inventory").before_command().await.is_ok());
        assert!(Chaos::new(Fixed(settings), "payment").before_command().await.is_err());
    }
}
