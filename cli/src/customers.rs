//! `nexus customers`: the operator's record of each customer's tier, which intake takes an order's tier
//! from (a message's own `tier` is only a claim).

use std::path::PathBuf;

use anyhow::Context;
use nexus_aws::dynamo::catalog::CustomerRecord;
use nexus_core::domain::checkout::Tier;
use nexus_core::domain::submission::check_customer_id;
use serde::Deserialize;

use crate::exit::Failure;
use crate::render::{self, Format};
use crate::stack::Nexus;

#[derive(Debug, clap::Subcommand)]
pub enum CustomersCommand {
    /// Record a customer's tier: their next orders run in its lane.
    Set {
        customer_id: String,
        #[arg(long, value_parser = parse_tier)]
        tier: Tier,
    },
    /// Record the tier of every customer of a file (`{"customers": [{"customerId": …, "tier": …}]}`, as
    /// infra/customers.json).
    Load { file: PathBuf },
    /// A customer's recorded tier (STANDARD when none is recorded).
    Show { customer_id: String },
}

#[derive(Debug, Deserialize)]
struct CustomersFile {
    customers: Vec<CustomerRecord>,
}

fn parse_tier(text: &str) -> Result<Tier, String> {
    match text.to_ascii_uppercase().as_str() {
        "VIP" => Ok(Tier::Vip),
        "STANDARD" => Ok(Tier::Standard),
        other => Err(format!("{other:?} is not VIP or STANDARD")),
    }
}

/// A customer id as the submission contract bounds it (`submission::check_customer_id`).
fn checked(customer_id: &str) -> Result<(), Failure> {
    check_customer_id(customer_id).map_err(|rejection| Failure::Usage(format!("{customer_id:?}: {rejection}")))
}

pub async fn run(nexus: &Nexus, format: Format, command: CustomersCommand) -> anyhow::Result<()> {
    let store = nexus.dynamo()?;
    let records = match command {
        CustomersCommand::Set { customer_id, tier } => vec![CustomerRecord { customer_id, tier }],
        CustomersCommand::Load { file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", file.display())))?;
            let loaded: CustomersFile = serde_json::from_str(&text)
                .map_err(|e| Failure::Usage(format!("{} is not a customers file: {e}", file.display())))?;
            loaded.customers
        }
        CustomersCommand::Show { customer_id } => {
            let tier = store.customer(&customer_id).await.context("read the customer")?.map(|r| r.tier);
            let record = CustomerRecord { customer_id, tier: tier.unwrap_or_default() };
            return match format {
                Format::Json => render::json(&record),
                Format::Table => {
                    let recorded = if tier.is_some() { "" } else { " (none recorded)" };
                    println!("{}: {}{recorded}", record.customer_id, record.tier.as_str());
                    Ok(())
                }
            };
        }
    };
    for record in &records {
        checked(&record.customer_id)?;
    }
    for record in &records {
        store.set_customer(record).await.context("record the customer")?;
    }
    match format {
        Format::Json => render::json(&records),
        Format::Table => {
            for record in &records {
                println!("{}: {}", record.customer_id, record.tier.as_str());
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_and_ids_are_checked() {
        assert_eq!(parse_tier("vip"), Ok(Tier::Vip));
        assert!(parse_tier("GOLD").is_err());
        assert!(checked("c-42").is_ok());
        assert!(checked("").is_err() && checked(&"c".repeat(129)).is_err() && checked("c\n1").is_err());
        assert!(checked("   ").is_err(), "blank, as a submission's");
    }
}
