//! Output: `--output table` (for people) or `--output json` (for scripts: one JSON document per command,
//! or one per line for streams), and the parsing of `--since`.

use chrono::{DateTime, Utc};
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

pub fn table<I, S>(header: I) -> Table
where
    I: IntoIterator<Item = S>,
    S: Into<comfy_table::Cell>,
{
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header(header);
    table
}

pub fn json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub fn json_line<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

/// Progress for long operations, on stderr so stdout stays parseable.
pub fn progress(message: impl std::fmt::Display) {
    eprintln!("… {message}");
}

pub fn money(cents: u64, currency: &str) -> String {
    format!("{}.{:02} {currency}", cents / 100, cents % 100)
}

/// `--since`: a duration back from now (`90s`, `15m`, `2h`, `1day`) or an RFC 3339 time.
pub fn parse_since(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    let ago = humantime::parse_duration(text)
        .map_err(|e| format!("{text:?} is neither a duration (15m, 2h) nor an RFC 3339 time: {e}"))?;
    let ago = chrono::Duration::from_std(ago).map_err(|e| e.to_string())?;
    Ok(Utc::now() - ago)
}

/// An RFC 3339 timestamp as stored, or None when unreadable.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_and_times() {
        let ten_minutes_ago = parse_since("10m").expect("duration");
        let age = Utc::now() - ten_minutes_ago;
        assert!((599..=601).contains(&age.num_seconds()), "{age}");
        assert_eq!(parse_since("2026-11-27T08:00:00Z").expect("time").to_rfc3339(), "2026-11-27T08:00:00+00:00");
        assert!(parse_since("yesterday-ish").is_err());
    }

    #[test]
    fn money_is_exact() {
        assert_eq!(money(123_456, "INR"), "1234.56 INR");
        assert_eq!(money(5, "INR"), "0.05 INR");
    }
}
