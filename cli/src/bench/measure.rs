//! A measured window: LocalStack's requests (its log), CPU per process (two /proc snapshots) and the peak
//! resident memory per process (sampled every 250 ms) between opening and closing it; and the idle rate of
//! the same, to take off (a stack's pollers long-poll LocalStack whether or not orders flow).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::procs::{self, Roots, Snapshot};
use super::requests;

#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// When the window opened and closed, milliseconds since the epoch.
    pub from_ms: i64,
    pub to_ms: i64,
    pub seconds: f64,
    pub requests: BTreeMap<String, f64>,
    pub cpu_seconds: BTreeMap<String, f64>,
    pub peak_bytes: BTreeMap<String, u64>,
}

impl Measured {
    /// CPU per group net of what the same time costs idle, per order, in milliseconds.
    pub fn cpu_ms_per_order(&self, idle: &Measured, orders: f64) -> BTreeMap<String, f64> {
        let scale = self.seconds / idle.seconds.max(1e-9);
        self.cpu_seconds
            .iter()
            .map(|(group, seconds)| {
                let net = seconds - idle.cpu_seconds.get(group).unwrap_or(&0.0) * scale;
                (group.clone(), (1000.0 * net / orders).max(0.0))
            })
            .collect()
    }
}

pub struct Window<'a> {
    log: &'a Path,
    roots: Roots,
    log_from: u64,
    before: Snapshot,
    started: Instant,
    from_ms: i64,
    peaks: Arc<Mutex<BTreeMap<String, u64>>>,
    sampling: Arc<AtomicBool>,
    sampler: tokio::task::JoinHandle<()>,
}

impl<'a> Window<'a> {
    pub fn open(log: &'a Path, roots: Roots) -> anyhow::Result<Self> {
        let peaks = Arc::new(Mutex::new(BTreeMap::new()));
        let sampling = Arc::new(AtomicBool::new(true));
        let sampler = tokio::spawn({
            let (peaks, sampling) = (peaks.clone(), sampling.clone());
            async move {
                while sampling.load(Ordering::Relaxed) {
                    let now = tokio::task::spawn_blocking(move || procs::snapshot(&roots)).await.unwrap_or_default();
                    {
                        let mut peaks = peaks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        for (group, bytes) in now.resident_bytes {
                            let peak = peaks.entry(group).or_insert(0);
                            *peak = (*peak).max(bytes);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        });
        Ok(Self {
            log,
            roots,
            log_from: requests::offset(log)?,
            before: procs::snapshot(&roots),
            started: Instant::now(),
            from_ms: chrono::Utc::now().timestamp_millis(),
            peaks,
            sampling,
            sampler,
        })
    }

    pub async fn close(self) -> anyhow::Result<Measured> {
        let after = procs::snapshot(&self.roots);
        let seconds = self.started.elapsed().as_secs_f64();
        let requests = requests::between(self.log, self.log_from, requests::offset(self.log)?)?;
        self.sampling.store(false, Ordering::Relaxed);
        let _ = self.sampler.await;
        let peak_bytes = std::mem::take(&mut *self.peaks.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        let (from_ms, to_ms) = (self.from_ms, chrono::Utc::now().timestamp_millis());
        Ok(Measured {
            from_ms,
            to_ms,
            seconds,
            requests,
            cpu_seconds: procs::cpu_between(&self.before, &after),
            peak_bytes,
        })
    }
}

/// What the stack costs with nothing to do, over `seconds`.
pub async fn idle(log: &Path, roots: Roots, seconds: u64) -> anyhow::Result<Measured> {
    let window = Window::open(log, roots)?;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    window.close().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_per_order_is_net_of_the_idle_rate_over_the_same_time() {
        let idle =
            Measured { seconds: 10.0, cpu_seconds: BTreeMap::from([("LocalStack".into(), 1.0)]), ..Default::default() };
        let busy = Measured {
            seconds: 20.0,
            cpu_seconds: BTreeMap::from([("LocalStack".into(), 12.0), ("fn payment".into(), 0.5)]),
            ..Default::default()
        };
        let per_order = busy.cpu_ms_per_order(&idle, 10.0);
        assert_eq!(per_order["LocalStack"], 1000.0);
        assert_eq!(per_order["fn payment"], 50.0);
    }
}
