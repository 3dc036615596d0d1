//! `nexus`, the Vyapaar Nexus operator CLI. Works against the local stack (`AWS_ENDPOINT_URL` or
//! `--endpoint`) and against AWS through the normal credential chain; the stack is found by name.

mod bench;
mod chaos;
mod customers;
mod dashboard;
mod dlq;
mod emulator;
mod exit;
mod forget;
mod inventory;
mod ledger;
mod logs;
mod orders;
mod render;
mod retry;
mod stack;
mod submit;
mod top;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::render::Format;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  failure (an AWS call failed; the message says what to do next)
  2  usage error (bad flag or argument, unreadable input)
  3  not found (stack, order, queue or service)
  4  nexus verify found invariant violations
  5  submit --wait: the order ended in a status other than COMPLETED
  6  submit --wait: the order did not end before --timeout
  7  retry refused: the order's status does not allow one (the message says why)
  8  forget left something it could not erase (listed, with the reason)";

#[derive(Debug, Parser)]
#[command(name = "nexus", version, about = "Operate Vyapaar Nexus: orders, logs, DLQs, chaos, invariants", after_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// AWS endpoint (LocalStack: http://localhost:4566). Unset: AWS itself, through the credential chain.
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL")]
    pub endpoint: Option<String>,
    /// The deployed Nexus stack.
    #[arg(long, global = true, env = "NEXUS_STACK", default_value = "vyapaar-nexus")]
    pub stack: String,
    /// AWS region (default: the credential chain's, or us-east-1 with --endpoint).
    #[arg(long, global = true, env = "AWS_REGION")]
    pub region: Option<String>,
    /// How results are printed.
    #[arg(long, short, global = true, value_enum, env = "NEXUS_OUTPUT", default_value_t = Format::Table)]
    pub output: Format,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Submit an order (JSON file, or - for stdin) through the orders topic; prints its order id.
    Submit(submit::SubmitArgs),
    /// An order's current state.
    Status {
        /// The order id (`nexus submit` prints it).
        order_id: String,
    },
    /// An order's events and its saga execution's states, with timings.
    Timeline { order_id: String },
    /// List orders, newest first.
    Orders(orders::ListArgs),
    /// Read the functions' logs (CloudWatch Logs), filtered on the client.
    Logs(logs::LogsArgs),
    /// Stock and prices: load a catalog, set one SKU, list.
    #[command(subcommand)]
    Inventory(inventory::InventoryCommand),
    /// Customers' tiers, which decide an order's lane: set, load a file, show.
    #[command(subcommand)]
    Customers(customers::CustomersCommand),
    /// The effects ledger: import the entries of a stack from before the ledger was split by writer.
    #[command(subcommand)]
    Ledger(ledger::LedgerCommand),
    /// Erase a customer's personal data from their ended orders (or, with --ended-before, apply the
    /// retention rule to every order); lists what it could not erase, and why.
    Forget(forget::ForgetArgs),
    /// Dead-letter queues: depths, peek, redrive.
    #[command(subcommand)]
    Dlq(dlq::DlqCommand),
    /// Run-time chaos settings of the services.
    #[command(subcommand)]
    Chaos(chaos::ChaosCommand),
    /// Check every invariant over all orders and tables; exits 4 on any violation.
    Verify(verify::VerifyArgs),
    /// Run a failed order again once its cause is fixed: a new attempt of an order cancelled because a
    /// service stayed unavailable, the compensation of an order that needs attention, or the end of an
    /// order whose execution ended before it did. One order, or every order a filter matches.
    Retry(retry::RetryArgs),
    /// Publish an order's events again from its event log (subscribers dedupe by event id): for an order
    /// whose status change was written but never notified (`nexus verify`: event-not-notified).
    Republish {
        /// The order id.
        order_id: String,
    },
    /// A live operations page in the browser (127.0.0.1): orders, sagas, queues, inventory, logs, controls.
    Dashboard(dashboard::DashboardArgs),
    /// One screen: orders per status, active sagas, throughput, queue and DLQ depths, executions.
    Top(top::TopArgs),
    /// Nexus against the null saga on an isolated local stack (`make bench` sets it up)
    Bench(Box<bench::BenchArgs>),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("nexus: {error:#}");
            ExitCode::from(exit::code_of(&error))
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let format = cli.global.output;
    let nexus = stack::Nexus::connect(&cli.global).await?;
    match cli.command {
        Command::Submit(args) => submit::run(&nexus, format, args).await,
        Command::Status { order_id } => orders::status(&nexus, format, &order_id).await,
        Command::Timeline { order_id } => orders::timeline(&nexus, format, &order_id).await,
        Command::Orders(args) => orders::list(&nexus, format, args).await,
        Command::Logs(args) => logs::run(&nexus, format, args).await,
        Command::Inventory(command) => inventory::run(&nexus, format, command).await,
        Command::Customers(command) => customers::run(&nexus, format, command).await,
        Command::Ledger(command) => ledger::run(&nexus, format, command).await,
        Command::Forget(args) => forget::run(&nexus, format, args).await,
        Command::Dlq(command) => dlq::run(&nexus, format, command).await,
        Command::Chaos(command) => chaos::run(&nexus, format, command).await,
        Command::Verify(args) => verify::run(&nexus, format, args).await,
        Command::Retry(args) => retry::run(&nexus, format, args).await,
        Command::Republish { order_id } => retry::republish(&nexus, &order_id).await,
        Command::Top(args) => top::run(&nexus, format, args).await,
        Command::Dashboard(args) => dashboard::run(nexus, args).await,
        Command::Bench(args) => bench::run(&nexus, format, *args).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_verb_parses() {
        for args in [
            &["nexus", "submit", "order.json", "--wait"][..],
            &["nexus", "status", "abc"],
            &["nexus", "-o", "json", "timeline", "abc"],
            &["nexus", "orders", "--status", "CANCELLED", "--since", "10m"],
            &["nexus", "logs", "--function", "payment", "--order", "abc", "--level", "warn", "--follow"],
            &["nexus", "inventory", "set", "SKU-1", "5"],
            &["nexus", "dlq", "redrive", "payment"],
            &["nexus", "chaos", "set", "payment", "--failure-rate", "0.2", "--latency-ms", "100"],
            &["nexus", "verify"],
            &["nexus", "verify", "--reclaim-slots"],
            &["nexus", "verify", "--order", "a", "--order", "b"],
            &["nexus", "retry", "abc"],
            &[
                "nexus",
                "retry",
                "--status",
                "NEEDS_ATTENTION",
                "--reason",
                "Payment.Unavailable",
                "--since",
                "2h",
                "--dry-run",
            ],
            &["nexus", "top", "--watch", "2"],
            &["nexus", "dashboard", "--port", "0", "--read-only", "--verify-every", "0s"],
            &[
                "nexus",
                "bench",
                "--burst",
                "5",
                "--null-template",
                "n.json",
                "--function-host",
                "h",
                "--lambda-dir",
                "l",
                "--dynamodb-endpoint",
                "http://127.0.0.1:1",
                "--localstack-log",
                "x.log",
                "--localstack-pid",
                "1",
            ],
        ] {
            Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
    }

    #[test]
    fn bad_input_is_refused_by_the_parser() {
        assert!(Cli::try_parse_from(["nexus", "orders", "--status", "LOST"]).is_err());
        assert!(Cli::try_parse_from(["nexus", "chaos", "set", "payment", "--failure-rate", "1.5"]).is_err());
        assert!(Cli::try_parse_from(["nexus", "inventory", "set", "SKU-1", "-3"]).is_err());
    }
}
