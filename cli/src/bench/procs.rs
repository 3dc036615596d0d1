//! CPU and memory of the processes an order runs through, read from /proc (Linux: the local environment's
//! machines): LocalStack (without its DynamoDB Local child), DynamoDB Local, the function host, and each
//! function by binary. CPU is the difference of two snapshots; memory the peak of sampled resident sets.

use std::collections::BTreeMap;

use procfs::process::{Process, all_processes};

/// A process's part in the bench: what its CPU and memory are reported as.
pub fn group_of(
    pid: i32,
    parents: &BTreeMap<i32, i32>,
    cmdlines: &BTreeMap<i32, String>,
    roots: &Roots,
) -> Option<String> {
    let cmdline = cmdlines.get(&pid)?;
    if cmdline.contains("DynamoDBLocal.jar") {
        return descends(pid, roots.localstack, parents).then(|| "DynamoDB Local".to_owned());
    }
    if pid == roots.localstack {
        return Some("LocalStack".into());
    }
    let host = roots.host?;
    if pid == host {
        return Some("function host".into());
    }
    if descends(pid, host, parents) {
        // A function runs as `<lambda dir>/<binary>/bootstrap`.
        let program = cmdline.split('\0').next().unwrap_or_default();
        let binary = program.rsplit('/').nth(1).unwrap_or(program);
        return Some(format!("fn {binary}"));
    }
    descends(pid, roots.localstack, parents).then(|| "LocalStack".to_owned())
}

fn descends(mut pid: i32, ancestor: i32, parents: &BTreeMap<i32, i32>) -> bool {
    for _ in 0..64 {
        if pid == ancestor {
            return true;
        }
        match parents.get(&pid) {
            Some(&parent) if parent > 1 => pid = parent,
            _ => return false,
        }
    }
    false
}

#[derive(Debug, Clone, Copy)]
pub struct Roots {
    pub localstack: i32,
    pub host: Option<i32>,
}

/// CPU-seconds and resident bytes per group at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub cpu_seconds: BTreeMap<String, f64>,
    pub resident_bytes: BTreeMap<String, u64>,
}

pub fn snapshot(roots: &Roots) -> Snapshot {
    let (ticks, page) = (procfs::ticks_per_second() as f64, procfs::page_size());
    let mut stats = Vec::new();
    let (mut parents, mut cmdlines) = (BTreeMap::new(), BTreeMap::new());
    // Processes come and go while /proc is read: one that vanished is skipped.
    for process in all_processes().into_iter().flatten().flatten() {
        let Ok(stat) = process.stat() else { continue };
        let cmdline = process.cmdline().map(|c| c.join("\0")).unwrap_or_default();
        parents.insert(stat.pid, stat.ppid);
        cmdlines.insert(stat.pid, cmdline);
        stats.push(stat);
    }
    let mut snapshot = Snapshot::default();
    for stat in stats {
        let Some(group) = group_of(stat.pid, &parents, &cmdlines, roots) else { continue };
        *snapshot.cpu_seconds.entry(group.clone()).or_default() += (stat.utime + stat.stime) as f64 / ticks;
        *snapshot.resident_bytes.entry(group).or_default() += stat.rss * page;
    }
    snapshot
}

/// Whether a pid is a live process (the roots are checked before a run).
pub fn alive(pid: i32) -> bool {
    Process::new(pid).is_ok_and(|p| p.is_alive())
}

/// CPU-seconds spent per group between two snapshots (a process started in between counts from zero).
pub fn cpu_between(before: &Snapshot, after: &Snapshot) -> BTreeMap<String, f64> {
    after
        .cpu_seconds
        .iter()
        .map(|(group, seconds)| (group.clone(), (seconds - before.cpu_seconds.get(group).unwrap_or(&0.0)).max(0.0)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_fall_into_their_groups() {
        let parents = BTreeMap::from([(10, 1), (11, 10), (12, 10), (20, 1), (21, 20), (22, 20), (30, 1)]);
        let cmdlines = BTreeMap::from([
            (10, "python\0-m\0localstack".to_owned()),
            (11, "java\0-jar\0DynamoDBLocal.jar\0-port\u{0}4510".to_owned()),
            (12, "python\0worker".to_owned()),
            (20, "/x/lambda/function-host/bootstrap\0--stack".to_owned()),
            (21, "/x/lambda/payment/bootstrap".to_owned()),
            (22, "/x/lambda/null-responder/bootstrap".to_owned()),
            (30, "java\0-jar\0DynamoDBLocal.jar".to_owned()),
        ]);
        let roots = Roots { localstack: 10, host: Some(20) };
        let group = |pid| group_of(pid, &parents, &cmdlines, &roots);
        assert_eq!(group(10).as_deref(), Some("LocalStack"));
        assert_eq!(group(11).as_deref(), Some("DynamoDB Local"));
        assert_eq!(group(12).as_deref(), Some("LocalStack"));
        assert_eq!(group(20).as_deref(), Some("function host"));
        assert_eq!(group(21).as_deref(), Some("fn payment"));
        assert_eq!(group(22).as_deref(), Some("fn null-responder"));
        // Another environment's DynamoDB Local is not ours.
        assert_eq!(group(30), None);
    }

    #[test]
    fn cpu_is_the_difference_and_new_processes_count_from_zero() {
        let before = Snapshot { cpu_seconds: BTreeMap::from([("LocalStack".into(), 10.0)]), ..Default::default() };
        let after = Snapshot {
            cpu_seconds: BTreeMap::from([("LocalStack".into(), 12.5), ("fn payment".into(), 0.25)]),
            ..Default::default()
        };
        let spent = cpu_between(&before, &after);
        assert_eq!(spent["LocalStack"], 2.5);
        assert_eq!(spent["fn payment"], 0.25);
    }
}
