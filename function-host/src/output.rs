//! A function process's stdout and stderr on their way to its log stream, in order with the lines Lambda
//! writes itself. "Lambda sends … the END and REPORT" lines once the invocation is over: every line the
//! function wrote during the invocation must come before them.
//!
//! Why pipes of our own rather than `Stdio::piped()`: the host keeps a second write end of each pipe. After an
//! invocation it writes a marker behind whatever the function wrote and waits until the reader has passed it;
//! a pipe is first in, first out, so everything written before the response is then shipped. Waiting for
//! silence instead would be a guess, and a line stamped after END is what this module exists to prevent.

use std::io::{PipeReader, PipeWriter, Write};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::unix::pipe;
use tokio::sync::watch;

use crate::cloudwatch_logs::LogSink;
use crate::logging::Logging;

/// Never part of a function's output: a NUL byte cannot appear in text a function means to log.
const MARKER: &str = "\u{0}function-host-drain:";
/// A reader that has not passed the marker by then is stuck; the invocation's END is not held up longer.
const DRAIN_LIMIT: Duration = Duration::from_secs(2);
/// Lines longer than this are cut, as CloudWatch Logs caps an event at 256 KiB.
const MAX_LINE_BYTES: usize = 256 * 1024 - 26;

/// Where a process's lines go.
#[derive(Clone)]
pub struct Destination {
    pub logs: LogSink,
    pub logging: Arc<Logging>,
    pub stream: String,
}

struct Channel {
    writer: Arc<PipeWriter>,
    passed: watch::Receiver<u64>,
}

/// The host's side of a process's stdout and stderr. Dropping it lets the readers end once the process is gone.
pub struct Output {
    channels: Vec<Channel>,
    marker: u64,
}

impl Output {
    /// Opens both pipes and starts their readers; returns what to give the process as stdout and stderr.
    pub fn open(destination: &Destination) -> std::io::Result<(Self, Stdio, Stdio)> {
        let (stdout, out_channel) = open_pipe(destination)?;
        let (stderr, err_channel) = open_pipe(destination)?;
        Ok((Self { channels: vec![out_channel, err_channel], marker: 0 }, stdout, stderr))
    }

    /// Returns once every line the process wrote before this call has been handed to the log sink.
    pub async fn drain(&mut self) {
        self.marker += 1;
        let marker = self.marker;
        let bytes = format!("{MARKER}{marker}\n").into_bytes();
        for channel in &self.channels {
            let writer = channel.writer.clone();
            let bytes = bytes.clone();
            // A pipe write blocks while the pipe is full; the reader is emptying it, but not on this thread.
            tokio::task::spawn_blocking(move || (&*writer).write_all(&bytes));
        }
        let passed = async {
            for channel in &mut self.channels {
                let _ = channel.passed.wait_for(|passed| *passed >= marker).await;
            }
        };
        if tokio::time::timeout(DRAIN_LIMIT, passed).await.is_err() {
            tracing::warn!("function output not drained within {DRAIN_LIMIT:?}; END may precede some of its lines");
        }
    }
}

fn open_pipe(destination: &Destination) -> std::io::Result<(Stdio, Channel)> {
    let (reader, writer) = std::io::pipe()?;
    let host_writer = writer.try_clone()?;
    let (passed_tx, passed) = watch::channel(0);
    let reader = receiver(reader)?;
    tokio::spawn(forward(reader, destination.clone(), passed_tx));
    Ok((Stdio::from(writer), Channel { writer: Arc::new(host_writer), passed }))
}

fn receiver(reader: PipeReader) -> std::io::Result<pipe::Receiver> {
    // Non-blocking is set on the read end only; the process's write end stays blocking, as a terminal's would.
    pipe::Receiver::from_owned_fd(std::os::fd::OwnedFd::from(reader))
}

async fn forward(reader: pipe::Receiver, destination: Destination, passed: watch::Sender<u64>) {
    let mut reader = BufReader::new(reader);
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        match reader.read_until(b'\n', &mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&buffer);
        let text = text.trim_end_matches(['\n', '\r']);
        let (line, marker) = match text.find(MARKER) {
            Some(at) => (&text[..at], text[at + MARKER.len()..].parse::<u64>().ok()),
            None => (text, None),
        };
        // A marker behind a line without its newline ends that line; an empty line alone is not an event.
        if !line.is_empty() && destination.logging.keeps_application_line(line) {
            let mut line = line.to_owned();
            if line.len() > MAX_LINE_BYTES {
                let cut = (0..=MAX_LINE_BYTES).rev().find(|i| line.is_char_boundary(*i)).unwrap_or(0);
                line.truncate(cut);
            }
            destination.logs.line(&destination.logging.group, &destination.stream, line);
        }
        if let Some(marker) = marker {
            passed.send_replace(marker);
        }
    }
}
