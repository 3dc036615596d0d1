//! `nexus forget`: erase a customer's personal data, or apply the retention rule (`nexus_ops::forget`).

use std::time::Duration;

use anyhow::Context;
use nexus_ops::forget::{self, Kept, Scope};

use crate::exit::Failure;
use crate::render::{self, Format};
use crate::stack::Nexus;

#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct ForgetArgs {
    /// The customer whose personal data (email, shipping address, payment token) every ended order of
    /// theirs forgets.
    pub customer_id: Option<String>,
    /// The retention rule instead: every order that ended longer ago than this (e.g. 365d) forgets its
    /// personal data. Run it on a schedule (docs/operations.md).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub ended_before: Option<Duration>,
}

pub async fn run(nexus: &Nexus, format: Format, args: ForgetArgs) -> anyhow::Result<()> {
    let store = nexus.dynamo()?;
    let now = chrono::Utc::now();
    let scope = match (&args.customer_id, args.ended_before) {
        (Some(customer), _) => Scope::Customer(customer.clone()),
        (None, Some(age)) => {
            let age = chrono::Duration::from_std(age).map_err(|e| Failure::Usage(format!("--ended-before: {e}")))?;
            Scope::EndedBefore((now - age).to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        }
        (None, None) => return Err(Failure::Usage("name a customer, or --ended-before".into()).into()),
    };
    let at = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut report = forget::forget(&store, &scope, &at).await.context("erase personal data")?;
    if let Scope::Customer(customer) = &scope {
        // Dead letters keep a submission as it came: listed for the operator, never deleted here.
        let sqs = aws_sdk_sqs::Client::new(&nexus.config);
        for queue in nexus.queues() {
            let messages = nexus_ops::dlq::peek(&sqs, &queue.dlq_url).await.context("read a DLQ")?;
            let naming =
                messages.iter().filter(|m| forget::names_customer(m.body().unwrap_or_default(), customer)).count();
            if naming > 0 {
                report.kept.push(Kept {
                    what: format!("{naming} dead letter(s) in the {} DLQ", queue.name),
                    why: "a DLQ keeps the message as it came: redrive it (nexus dlq redrive) or let it expire \
                          (14 days), then run forget again"
                        .into(),
                });
            }
        }
    }
    if format == Format::Json {
        return render::json(&report);
    }
    println!(
        "erased the personal data of {} order(s); {} erased before",
        report.erased.len(),
        report.already_erased.len()
    );
    println!("logs: the functions never log an email or an address (customerEmailHash only); nothing to erase");
    for kept in &report.kept {
        println!("not erased: {}: {}", kept.what, kept.why);
    }
    if report.kept.is_empty() {
        Ok(())
    } else {
        Err(Failure::Incomplete(format!("{} item(s) left", report.kept.len())).into())
    }
}
