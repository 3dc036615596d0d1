//! LocalStack requests, counted from LocalStack's own request log: it writes one line per request it
//! serves, `… localstack.request.aws : AWS sns.Publish => 200`. A window is the log's bytes between two
//! offsets; its requests are counted by `service.Operation`.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::Context;

/// Where LocalStack's log ends now: the start or end of a window.
pub fn offset(log: &Path) -> anyhow::Result<u64> {
    Ok(std::fs::metadata(log).with_context(|| format!("read LocalStack's log {}", log.display()))?.len())
}

/// The requests LocalStack logged between two offsets, by `service.Operation`.
pub fn between(log: &Path, from: u64, to: u64) -> anyhow::Result<BTreeMap<String, f64>> {
    let mut file = std::fs::File::open(log).with_context(|| format!("open LocalStack's log {}", log.display()))?;
    file.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::new();
    file.take(to.saturating_sub(from)).read_to_end(&mut bytes)?;
    Ok(count(&String::from_utf8_lossy(&bytes)))
}

pub fn count(text: &str) -> BTreeMap<String, f64> {
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let Some((_, after)) = line.split_once(" AWS ") else { continue };
        let Some((operation, _)) = after.split_once(" => ") else { continue };
        if operation.contains('.') && !operation.contains(' ') {
            *counts.entry(operation.to_owned()).or_insert(0.0) += 1.0;
        }
    }
    counts
}

/// `busy` net of what `idle` does in the same time (the pollers' long polls), less the bench's own calls,
/// per order; operations under 0.05 per order are left out.
pub fn per_order(
    busy: &BTreeMap<String, f64>,
    idle: &BTreeMap<String, f64>,
    idle_scale: f64,
    own: &BTreeMap<String, f64>,
    orders: f64,
) -> BTreeMap<String, f64> {
    busy.iter()
        .map(|(op, n)| {
            let net = n - idle.get(op).unwrap_or(&0.0) * idle_scale - own.get(op).unwrap_or(&0.0);
            (op.clone(), net / orders)
        })
        .filter(|(_, per)| *per >= 0.05)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
2026-11-29T13:30:27.473  INFO --- [et.reactor-0] localstack.request.aws     : AWS sns.Publish => 200
2026-11-29T13:30:27.480  INFO --- [et.reactor-1] localstack.request.aws     : AWS sqs.ReceiveMessage => 200
2026-11-29T13:30:27.481  INFO --- [et.reactor-1] localstack.request.aws     : AWS sns.Publish => 400 (InvalidParameter)
2026-11-29T13:30:27.490  WARN --- [et.reactor-1] localstack.services.foo    : something AWS said
nexus: localstack-core 2026.3.0: Step Functions JSONPath parsing cached
";

    #[test]
    fn every_request_line_counts_once_by_operation() {
        let counts = count(LOG);
        assert_eq!(counts, BTreeMap::from([("sns.Publish".into(), 2.0), ("sqs.ReceiveMessage".into(), 1.0)]));
    }

    #[test]
    fn a_window_counts_only_its_bytes() {
        let path = std::env::temp_dir().join(format!("nexus-bench-log-{}", std::process::id()));
        std::fs::write(&path, LOG).expect("test data");
        let first_line = LOG.lines().next().expect("test data").len() as u64 + 1;
        let counts = between(&path, first_line, offset(&path).expect("test data")).expect("test data");
        std::fs::remove_file(&path).expect("test data");
        assert_eq!(counts.get("sns.Publish"), Some(&1.0));
        assert_eq!(counts.get("sqs.ReceiveMessage"), Some(&1.0));
    }

    #[test]
    fn per_order_is_net_of_idle_and_of_the_bench_itself() {
        let busy =
            BTreeMap::from([("sqs.ReceiveMessage".into(), 130.0), ("sns.Publish".into(), 50.0), ("s3.X".into(), 0.4)]);
        let idle = BTreeMap::from([("sqs.ReceiveMessage".into(), 10.0)]);
        let own = BTreeMap::from([("sns.Publish".into(), 10.0)]);
        let per = per_order(&busy, &idle, 3.0, &own, 10.0);
        assert_eq!(per, BTreeMap::from([("sqs.ReceiveMessage".into(), 10.0), ("sns.Publish".into(), 4.0)]));
    }
}
