//! Percentiles and per-step latencies: pure figures over measured samples.

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

/// Nearest-rank percentiles (no interpolation: every figure is a measured sample); zeros for no samples.
pub fn percentiles(samples: &[f64]) -> Percentiles {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|s| s.is_finite()).collect();
    if sorted.is_empty() {
        return Percentiles::default();
    }
    sorted.sort_by(f64::total_cmp);
    let rank = |p: f64| sorted[((p / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1];
    Percentiles { p50: rank(50.0), p95: rank(95.0), p99: rank(99.0) }
}

/// Seconds from one status to the next, per pair of statuses seen one after the other in an order's events,
/// kept in first-seen order: `(status, at seconds)` per order, in sequence.
pub fn steps(orders: &[Vec<(String, f64)>]) -> Vec<(String, Percentiles)> {
    let mut order: Vec<String> = Vec::new();
    let mut samples: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for events in orders {
        for pair in events.windows(2) {
            let name = format!("{} → {}", pair[0].0, pair[1].0);
            if !samples.contains_key(&name) {
                order.push(name.clone());
            }
            samples.entry(name).or_default().push(pair[1].1 - pair[0].1);
        }
    }
    order
        .into_iter()
        .map(|name| {
            let p = percentiles(&samples[&name]);
            (name, p)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_measured_samples_by_nearest_rank() {
        let samples: Vec<f64> = (1..=100).map(f64::from).rev().collect();
        assert_eq!(percentiles(&samples), Percentiles { p50: 50.0, p95: 95.0, p99: 99.0 });
        assert_eq!(percentiles(&[2.0]), Percentiles { p50: 2.0, p95: 2.0, p99: 2.0 });
        assert_eq!(percentiles(&[]), Percentiles::default());
    }

    #[test]
    fn steps_pair_each_status_with_the_next_in_first_seen_order() {
        let orders = vec![
            vec![("PENDING".into(), 0.0), ("RESERVED".into(), 1.0), ("COMPLETED".into(), 3.0)],
            vec![("PENDING".into(), 10.0), ("RESERVED".into(), 13.0), ("COMPLETED".into(), 14.0)],
        ];
        let steps = steps(&orders);
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0].0, "PENDING → RESERVED");
        assert_eq!(steps[0].1.p50, 1.0);
        assert_eq!(steps[0].1.p99, 3.0);
        assert_eq!(steps[1].0, "RESERVED → COMPLETED");
    }
}
