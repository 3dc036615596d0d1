//! `nexus chaos`: the services' run-time chaos settings (failure rate, latency, crash rate), which the
//! running functions pick up within seconds.

use anyhow::Context;
use nexus_core::chaos::{CACHE_TTL, ChaosSettings, SERVICES, ServiceChaos};
use nexus_core::ports::ChaosSource;

use crate::render::{self, Format};
use crate::stack::Nexus;

#[derive(Debug, clap::Subcommand)]
pub enum ChaosCommand {
    /// The current settings.
    Show,
    /// Set one service's chaos (the flags not given are 0).
    Set {
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(SERVICES))]
        service: String,
        /// Probability (0–1) that a command fails with a transient error (answered as such; the saga retries it).
        #[arg(long, default_value_t = 0.0, value_parser = probability)]
        failure_rate: f64,
        /// Added to every command, in milliseconds (at most 60000; never past the function's deadline).
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=nexus_core::chaos::MAX_LATENCY_MS))]
        latency_ms: u64,
        /// Probability (0–1) that the function process crashes while handling a command.
        #[arg(long, default_value_t = 0.0, value_parser = probability)]
        crash_rate: f64,
    },
    /// Remove every setting: no chaos anywhere.
    Clear,
}

fn probability(text: &str) -> Result<f64, String> {
    let value: f64 = text.parse().map_err(|e| format!("{e}"))?;
    (0.0..=1.0).contains(&value).then_some(value).ok_or_else(|| format!("{value} is not between 0 and 1"))
}

pub async fn run(nexus: &Nexus, format: Format, command: ChaosCommand) -> anyhow::Result<()> {
    let store = nexus.dynamo()?;
    let settings = match command {
        ChaosCommand::Show => store.load().await.context("read the chaos settings")?,
        ChaosCommand::Set { service, failure_rate, latency_ms, crash_rate } => {
            let mut settings = store.load().await.context("read the chaos settings")?;
            settings.services.insert(service, ServiceChaos { failure_rate, latency_ms, crash_rate });
            store.save_chaos(&settings).await.context("write the chaos settings")?;
            render::progress(format!("the functions pick this up within {} s", CACHE_TTL.as_secs()));
            settings
        }
        ChaosCommand::Clear => {
            let settings = ChaosSettings::default();
            store.save_chaos(&settings).await.context("write the chaos settings")?;
            settings
        }
    };
    if format == Format::Json {
        return render::json(&settings);
    }
    let mut table = render::table(["service", "failure rate", "latency ms", "crash rate"]);
    for service in SERVICES {
        let chaos = settings.services.get(service).cloned().unwrap_or_default();
        table.add_row([
            service.to_owned(),
            chaos.failure_rate.to_string(),
            chaos.latency_ms.to_string(),
            chaos.crash_rate.to_string(),
        ]);
    }
    println!("{table}");
    Ok(())
}
