//! Applies the chaos settings ([`nexus_core::chaos`]) in a function: read through a short cache, then per
//! command added latency, maybe a transient failure, maybe a crash of the whole process (as a Lambda
//! runtime that dies mid-invocation). Every injected fault is logged.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use nexus_core::chaos::{CACHE_TTL, Decision, InjectedFailure, ServiceChaos};
use nexus_core::ports::ChaosSource;

pub struct Chaos<S> {
    source: S,
    service: &'static str,
    cache: Mutex<Option<(Instant, ServiceChaos)>>,
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
    use nexus_testkit::Memory;

    use super::*;

    #[tokio::test]
    async fn a_service_without_settings_is_left_alone_and_a_failing_one_fails() {
        let settings = Memory::default();
        let failing = ServiceChaos { failure_rate: 1.0, ..ServiceChaos::default() };
        settings.world().chaos.services.insert("payment".into(), failing);
        assert!(Chaos::new(settings.clone(), "inventory").before_command().await.is_ok());
        assert!(Chaos::new(settings, "payment").before_command().await.is_err());
    }
}
