//! `nexus-sim`: runs seeds of the deterministic simulation (`make sim`), or replays one (`make sim SEED=n`).
//! See docs/simulation.md.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use nexus_sim::scenario::{self, Settings, Verdict};
use nexus_sim::template::Topology;

#[derive(Debug, Parser)]
#[command(name = "nexus-sim", about = "The whole saga under a deterministic scheduler, faults drawn from a seed")]
struct Args {
    /// Replay this one seed: print its verdict and trace summary, its digest on the last line.
    #[arg(long, env = "SEED")]
    seed: Option<u64>,
    /// How many seeds to run (from --first).
    #[arg(long, default_value_t = 200)]
    seeds: u64,
    #[arg(long, default_value_t = 1)]
    first: u64,
    /// Orders per seed.
    #[arg(long, default_value_t = 20)]
    orders: usize,
    /// Run without faults (a baseline: every order must end as its shape says).
    #[arg(long)]
    no_faults: bool,
    /// The repository (template.yaml, infra/) to read.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/.."))]
    root: PathBuf,
    /// Print the whole trace of a replayed seed.
    #[arg(long)]
    trace: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let topology = match Topology::load(&args.root) {
        Ok(topology) => topology,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let settings = Settings { orders: args.orders, faults: !args.no_faults, keep_trace: false };
    match args.seed {
        Some(seed) => replay(&topology, seed, &settings, args.trace),
        None => many(&topology, args.first, args.seeds, &settings),
    }
}

fn run(topology: &Topology, seed: u64, settings: &Settings) -> Verdict {
    match scenario::run(topology, seed, settings) {
        Ok(verdict) => verdict,
        Err(e) => Verdict { problems: vec![e.to_string()], ..Verdict::default() },
    }
}

fn replay(topology: &Topology, seed: u64, settings: &Settings, print_trace: bool) -> ExitCode {
    let verdict = run(topology, seed, &Settings { keep_trace: true, ..settings.clone() });
    if print_trace {
        for line in &verdict.trace {
            println!("{line}");
        }
    }
    println!("seed {seed}: {} orders {:?}", verdict.orders, verdict.statuses);
    println!(
        "{} steps, {} choices, {} faults, {} trace lines",
        verdict.steps,
        verdict.choices,
        verdict.faults,
        verdict.trace.len()
    );
    for problem in &verdict.problems {
        println!("violation: {problem}");
    }
    println!("digest {}", verdict.digest);
    if verdict.problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn many(topology: &Topology, first: u64, seeds: u64, settings: &Settings) -> ExitCode {
    let started = Instant::now();
    let (mut orders, mut choices, mut faults, mut failed) = (0usize, 0u64, 0u64, Vec::new());
    for seed in first..first + seeds {
        let verdict = run(topology, seed, settings);
        orders += verdict.orders;
        choices += verdict.choices;
        faults += verdict.faults;
        if !verdict.problems.is_empty() {
            failed.push(seed);
            report_failure(topology, seed, settings, &verdict);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{seeds} seeds, {orders} orders in {seconds:.1} s ({:.0} orders/s); {choices} scheduling choices explored, {faults} faults injected",
        orders as f64 / seconds.max(1e-9)
    );
    if failed.is_empty() {
        println!("{} passed, 0 failed", seeds);
        ExitCode::SUCCESS
    } else {
        println!(
            "{} passed, {} failed: seeds {failed:?} (replay one: make sim SEED=n)",
            seeds - failed.len() as u64,
            failed.len()
        );
        ExitCode::FAILURE
    }
}

/// A failing seed: its problems, then the shortest run of it that still fails (fewer orders, the same seed)
/// and that run's trace lines about the orders named.
fn report_failure(topology: &Topology, seed: u64, settings: &Settings, verdict: &Verdict) {
    println!("seed {seed} FAILED:");
    for problem in verdict.problems.iter().take(10) {
        println!("  {problem}");
    }
    let mut smallest = settings.orders;
    let mut orders = settings.orders / 2;
    while orders >= 1 {
        let smaller = run(topology, seed, &Settings { orders, ..settings.clone() });
        if smaller.problems.is_empty() {
            break;
        }
        smallest = orders;
        orders /= 2;
    }
    let shortest = run(topology, seed, &Settings { orders: smallest, keep_trace: true, ..settings.clone() });
    println!(
        "  shortest: --seed {seed} --orders {smallest} ({} problems); its trace about them:",
        shortest.problems.len()
    );
    let subjects: Vec<&String> = shortest.subjects.iter().take(3).collect();
    let lines: Vec<&String> =
        shortest.trace.iter().filter(|line| subjects.iter().any(|s| line.contains(s.as_str()))).collect();
    for line in lines.iter().rev().take(60).rev() {
        println!("    {line}");
    }
}
