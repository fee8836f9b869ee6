//! The `footfall` binary: parses the command line and hands over to the library.

use std::io;

use clap::{Parser, Subcommand};
use footfall_server::sketch_cli::{self, SketchCommand};

/// footfall: a visitor counter for web sites.
#[derive(Debug, Parser)]
#[command(name = "footfall", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands; `serve` and others join `sketch` here.
#[derive(Debug, Subcommand)]
enum Command {
    /// Inspect, count and update Redis HyperLogLog files (raw `GET` output).
    #[command(subcommand)]
    Sketch(SketchCommand),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Sketch(command) => {
            sketch_cli::run(&command, io::stdin().lock(), &mut io::stdout().lock())?;
        }
    }
    Ok(())
}
