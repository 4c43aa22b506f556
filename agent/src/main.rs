//! The `routewarden` command: maps each subcommand to the library and errors to
//! exit codes (0 fine, 1 drift, 2 the input or the routing table unreadable).

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use routewarden::cli::{Cli, Command, ExpectedArgs, Format};
use routewarden::intent::Options;
use routewarden::{input, publish};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Expected(args) => expected(&args),
    }
}

fn expected(args: &ExpectedArgs) -> ExitCode {
    let options = Options {
        node_name: input::node_name(args.intent.node_name.as_deref()),
    };
    let intent = match input::load(&args.intent.input(), &options) {
        Ok(i) => i,
        Err(e) => return fail(&e),
    };
    let out = match args.format {
        Format::Json => publish::json(&intent),
        Format::Text => publish::text::expected(&intent),
    };
    emit(&out)
}

fn emit(text: &str) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|_| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("routewarden: {e}");
    ExitCode::from(2)
}
