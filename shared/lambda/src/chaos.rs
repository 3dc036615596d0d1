//! Applies the chaos settings ([`nexus_core::chaos`]) in a function: read through a short cache, then per
//! command added latency (never past the invocation's deadline), maybe a transient failure, maybe a crash
//! of the whole process (as a Lambda runtime that dies mid-invocation). Every injected fault is logged.
//! Off unless the stack was deployed with `ChaosEnabled=true` (`CHAOS_ENABLED`): then the settings are never
//! even read.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use nexus_core::chaos::{CACHE_TTL, Decision, InjectedFailure, MAX_LATENCY_MS, ServiceChaos};
use nexus_core::ports::ChaosSource;

/// Added latency stops this long before the invocation's deadline, so the function still answers.
const DEADLINE_HEADROOM: Duration = Duration::from_secs(1);

pub struct Chaos<S> {
    source: S,
    service: &'static str,
    enabled: bool,
    cache: Mutex<Option<(Instant, ServiceChaos)>>,
}

impl<S: ChaosSource> Chaos<S> {
    /// `enabled: false` (production) never reads the settings nor injects anything.
    pub fn new(source: S, service: &'static str, enabled: bool) -> Self {
        Self { source, service, enabled, cache: Mutex::new(None) }
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

    /// Applies the service's chaos before a command: latency (clamped to end before `deadline`, the
    /// invocation's), then maybe a crash or a transient failure.
    pub async fn before_command(&self, deadline: Option<SystemTime>) -> Result<(), InjectedFailure> {
        if !self.enabled {
            return Ok(());
        }
        let chaos = self.current().await;
        // The same rate crashes the process after a write, a publish or an answer (crash_points).
        crate::crash_points::set_rate(chaos.crash_rate);
        if chaos.latency_ms > 0 {
            let mut latency = Duration::from_millis(chaos.latency_ms.min(MAX_LATENCY_MS));
            if let Some(deadline) = deadline {
                let left = deadline.duration_since(SystemTime::now()).unwrap_or_default();
                latency = latency.min(left.saturating_sub(DEADLINE_HEADROOM));
            }
            tracing::info!(latencyMs = latency.as_millis() as u64, "chaos: added latency");
            tokio::time::sleep(latency).await;
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
        assert!(Chaos::new(settings.clone(), "inventory", true).before_command(None).await.is_ok());
        assert!(Chaos::new(settings, "payment", true).before_command(None).await.is_err());
    }

    #[tokio::test]
    async fn disabled_chaos_injects_nothing() {
        let settings = Memory::default();
        let failing = ServiceChaos { failure_rate: 1.0, crash_rate: 1.0, latency_ms: 60_000 };
        settings.world().chaos.services.insert("payment".into(), failing);
        assert!(Chaos::new(settings, "payment", false).before_command(None).await.is_ok());
    }

    #[tokio::test]
    async fn latency_ends_before_the_deadline() {
        let settings = Memory::default();
        settings
            .world()
            .chaos
            .services
            .insert("payment".into(), ServiceChaos { latency_ms: 60_000, ..ServiceChaos::default() });
        let started = Instant::now();
        let deadline = SystemTime::now() + Duration::from_millis(1_300);
        assert!(Chaos::new(settings, "payment", true).before_command(Some(deadline)).await.is_ok());
        assert!(started.elapsed() < Duration::from_secs(1), "clamped to the deadline less the headroom");
    }
}
