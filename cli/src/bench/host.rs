//! The function host, started by the bench for one stack at a time: every host's pollers long-poll
//! LocalStack even on empty queues, so a stack measured with another's host running would pay for both.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

pub struct HostSpec<'a> {
    pub binary: &'a Path,
    pub template: &'a Path,
    pub stack: &'a str,
    pub endpoint: &'a str,
    pub dynamodb_endpoint: Option<&'a str>,
    pub lambda_dir: &'a Path,
    pub work_dir: &'a Path,
}

/// A running function host, stopped (with its functions) when dropped.
pub struct FunctionHost {
    child: Child,
    pub pid: i32,
}

impl FunctionHost {
    pub async fn start(spec: &HostSpec<'_>) -> anyhow::Result<Self> {
        let ready = spec.work_dir.join(format!("function-host-{}.ready", spec.stack));
        let log = spec.work_dir.join(format!("function-host-{}.log", spec.stack));
        let _ = std::fs::remove_file(&ready);
        let output = std::fs::File::create(&log).with_context(|| format!("create {}", log.display()))?;
        let mut command = Command::new(spec.binary);
        command
            .args(["--template".as_ref(), spec.template.as_os_str()])
            .args(["--stack", spec.stack, "--endpoint", spec.endpoint])
            .args(["--lambda-dir".as_ref(), spec.lambda_dir.as_os_str()])
            .args(["--ready-file".as_ref(), ready.as_os_str()])
            .stdin(std::process::Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output)
            // Its own process group: stopping it stops every function process it started.
            .process_group(0)
            .kill_on_drop(true);
        if let Some(dynamodb) = spec.dynamodb_endpoint {
            command.args(["--dynamodb-endpoint", dynamodb]);
        }
        let mut child = command.spawn().with_context(|| format!("start {}", spec.binary.display()))?;
        let pid = child.id().context("the function host exited at once")? as i32;
        let started = Instant::now();
        while !ready.exists() {
            if let Some(status) = child.try_wait()? {
                bail!("the function host for {} exited ({status}); its log: {}", spec.stack, log.display());
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("the function host for {} was not ready after 60 s; its log: {}", spec.stack, log.display());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(Self { child, pid })
    }

    /// SIGTERM to the group (the host drains and stops its functions), SIGKILL after 15 s.
    pub async fn stop(mut self) {
        signal_group(self.pid, "-TERM");
        if tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await.is_err() {
            signal_group(self.pid, "-KILL");
        }
    }
}

impl Drop for FunctionHost {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            signal_group(self.pid, "-KILL");
        }
    }
}

// kill(1) rather than a libc binding: the CLI forbids unsafe code, and this runs twice per bench.
fn signal_group(group: i32, signal: &str) {
    let _ = std::process::Command::new("kill").args([signal, "--", &format!("-{group}")]).status();
}
