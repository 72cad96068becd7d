//! The operator-tui binary: parses the command line and hands off to the engine, a front end
//! or a record-keeping command.

use clap::Parser;
use color_eyre::eyre::Result;
use operator_tui::cli::{Cli, Commands, records};
use operator_tui::store::{self, Store};

fn open_store(db: &Option<std::path::PathBuf>) -> Result<Store> {
    let path = db.clone().unwrap_or_else(store::default_path);
    Store::open(&path)
}

fn main() -> Result<()> {
    color_eyre::install()?;
    let cli = Cli::parse();
    let (json, db) = (cli.json, cli.db);
    match cli.command {
        Some(Commands::Tickets { command }) => {
            records::tickets(&mut open_store(&db)?, command, json)
        }
        Some(Commands::Actions { command }) => {
            records::actions(&mut open_store(&db)?, command, json)
        }
        Some(Commands::Killswitch { state }) => {
            records::kill_switch(&mut open_store(&db)?, state, json)
        }
        Some(Commands::Mode { mode }) => records::mode(&mut open_store(&db)?, mode),
        Some(Commands::Audit { ticket, limit }) => {
            records::audit(&open_store(&db)?, ticket, limit, json)
        }
        _ => Err(color_eyre::eyre::eyre!(
            "this command arrives with the rate limiter subject"
        )),
    }
}
