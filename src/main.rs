//! operator-tui: an AI operator for distributed systems in a full-screen terminal.
//! The engine, subjects and front ends land here issue by issue; see README.md.

use clap::Parser;

/// An AI operator for distributed systems: watches a cluster, opens tickets when an invariant
/// breaks, diagnoses them and executes verified remediations.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {}

fn main() -> color_eyre::Result<()> {
    color_eyre::install()?;
    let _cli = Cli::parse();
    eprintln!("operator-tui: the engine is not built yet; see README.md for what works today.");
    Ok(())
}
