//! `nexus ledger import`: the upgrade step of a stack deployed before the ledger became one table per
//! writer (docs/deploy.md): the old table's entries copied into the writer tables, idempotently.

use anyhow::Context;
use serde_json::json;

use crate::render::{self, Format};
use crate::stack::Nexus;

#[derive(Debug, clap::Subcommand)]
pub enum LedgerCommand {
    /// Copy every entry of the ledger table from before the split into the table of its writer; an entry
    /// already there is left as it is, so running it again copies nothing.
    Import {
        /// The old table's name (the stack's former `LedgerTableName` output).
        #[arg(long = "from")]
        from_table: String,
    },
}

pub async fn run(nexus: &Nexus, format: Format, command: LedgerCommand) -> anyhow::Result<()> {
    let LedgerCommand::Import { from_table } = command;
    render::progress(format!("copying the entries of {from_table} into the writer tables"));
    let (copied, present) =
        nexus.dynamo()?.import_ledger(&from_table).await.with_context(|| format!("import the ledger {from_table}"))?;
    match format {
        Format::Json => render::json(&json!({"from": from_table, "copied": copied, "alreadyThere": present})),
        Format::Table => {
            println!("{copied} entries copied, {present} already there");
            Ok(())
        }
    }
}
