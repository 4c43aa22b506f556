//! The `routewarden` command: maps each subcommand to the library and errors to
//! exit codes (0 fine, 1 drift, 2 the input or the routing table unreadable). A
//! node without a MachineConfig is no error: its intent is empty and the
//! `machineconfig` source `absent`.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use routewarden::check::{self, IntentFrom, UnitsConfig};
use routewarden::cli::{
    CheckArgs, Cli, Command, ExpectedArgs, FailOn, Format, IntentArgs, LintArgs, LintFormat,
    NetworkManagerArgs, ServeArgs,
};
use routewarden::compare::SourceState;
use routewarden::input::{self, Loaded, Lookup};
use routewarden::intent::Options;
use routewarden::logging;
use routewarden::model::Intent;
use routewarden::publish::{self, text::Colour};
use routewarden::serve;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    logging::init(cli.log.log_format, cli.log.log_level.as_deref(), default_level);
    match cli.command {
        Command::Expected(args) => expected(&args),
        Command::Check(args) => check(&args),
        Command::Serve(args) => serve(args),
        Command::Lint(args) => lint(args),
    }
}

fn options(args: &IntentArgs) -> Options {
    Options {
        node_name: input::node_name(args.node_name.as_deref()),
        ..Options::default()
    }
}

/// The MachineConfig's intent and the state of its source: up, absent (an empty
/// intent, said on stderr), or skipped when it is not a source.
fn load(
    args: &IntentArgs,
    options: &Options,
    nm: &NetworkManagerArgs,
) -> Result<(Intent, SourceState), ExitCode> {
    nm.validate().map_err(|e| fail(&e))?;
    if !nm.machineconfig() {
        return Ok((Intent::default(), SourceState::Skipped));
    }
    let lookup = args.lookup();
    match input::read_intent(&lookup, options) {
        Ok(Loaded::Found(intent)) => Ok((*intent, SourceState::Up)),
        Ok(Loaded::Absent) => {
            eprintln!(
                "routewarden: no MachineConfig on this node ({lookup} holds none): the intent is empty"
            );
            Ok((Intent::default(), SourceState::Absent))
        }
        Err(e) => Err(fail(&e)),
    }
}

fn intent_from(nm: &NetworkManagerArgs) -> IntentFrom {
    IntentFrom {
        machineconfig: nm.machineconfig(),
        networkmanager: nm.networkmanager_intent(),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(&e))
}

fn expected(args: &ExpectedArgs) -> ExitCode {
    let nm = &args.networkmanager;
    let mut intent = match load(&args.intent, &options(&args.intent), nm) {
        Ok((i, _)) => i,
        Err(code) => return code,
    };
    if nm.networkmanager_intent() {
        let rt = match runtime() {
            Ok(rt) => rt,
            Err(code) => return code,
        };
        let config = UnitsConfig {
            dbus_address: args.dbus_address.clone(),
            no_units: true,
            no_networkmanager: false,
        };
        intent = rt.block_on(check::with_networkmanager(intent, &config));
    }
    let out = match args.format {
        Format::Json => publish::json(&intent),
        Format::Text => publish::text::expected(&intent),
    };
    emit(&out)
}

fn check(args: &CheckArgs) -> ExitCode {
    let options = options(&args.intent);
    let ((intent, machineconfig), rt) = match (load(&args.intent, &options, &args.networkmanager), runtime())
    {
        (Ok(i), Ok(rt)) => (i, rt),
        (Err(code), _) | (_, Err(code)) => return code,
    };
    let units = UnitsConfig {
        dbus_address: args.units.dbus_address.clone(),
        no_units: args.units.no_units,
        no_networkmanager: args.networkmanager.no_networkmanager,
    };
    let from = intent_from(&args.networkmanager);
    let record = match routewarden::remediate::state::read(&args.remediation_state) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("routewarden: {e}; the last remediation attempts are not shown");
            None
        }
    };
    let report = match rt.block_on(check::run(&intent, machineconfig, &units, from, record.as_ref())) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    let meta = publish::report_json::Meta {
        node: options.node_name.as_deref(),
        evaluated_at: std::time::SystemTime::now(),
    };
    let out = match args.format {
        Format::Json => publish::report_json::report(&report, meta),
        Format::Text => publish::text::check(&report, Colour::detect()),
    };
    let only_source_down = !from.machineconfig && !report.sources.networkmanager.is_up();
    match emit(&out) {
        code if code != ExitCode::SUCCESS => code,
        _ if only_source_down => fail(&"--intent networkmanager: NetworkManager could not be read"),
        _ if report.drift => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    if let Err(e) = args.networkmanager.validate() {
        return fail(&e);
    }
    let machineconfig = match args.intent.lookup() {
        Lookup::Stdin => return fail(&"serve reads a file it can watch; stdin (-) is not accepted"),
        lookup => lookup,
    };
    let config = serve::Config {
        machineconfig,
        options: options(&args.intent),
        dbus_address: args.units.dbus_address,
        no_units: args.units.no_units,
        no_networkmanager: args.networkmanager.no_networkmanager,
        intent_machineconfig: args.networkmanager.machineconfig(),
        intent_networkmanager: args.networkmanager.networkmanager_intent(),
        listen: args.listen,
        resync_interval: args.resync_interval,
        remediation: serve::RemediationConfig {
            mode: args.remediate.remediate,
            after: args.remediate.remediate_after,
            backoff: args.remediate.remediate_backoff,
            state: args.remediate.remediation_state,
        },
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result = rt.block_on(serve::run(config));
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("{e:#}")),
    }
}

fn lint(args: LintArgs) -> ExitCode {
    use routewarden::lint::{self, inputs, output, Level};
    let read = inputs::expand(&args.paths).and_then(|paths| paths.iter().map(inputs::read).collect());
    let inputs: Vec<lint::Input> = match read {
        Ok(i) => i,
        Err(e) => return fail(&e),
    };
    let report = lint::run(&inputs, args.node_labels, args.node_name);
    let out = match args.format {
        LintFormat::Text => output::text(&report),
        LintFormat::Json => output::json(&report),
        LintFormat::Github => output::github(&report),
        LintFormat::Sarif => output::sarif(&report),
    };
    let failing = match args.fail_on {
        FailOn::Error => report.at_least(Level::Error),
        FailOn::Warning => report.at_least(Level::Warning),
        FailOn::Never => 0,
    };
    match emit(&out) {
        code if code != ExitCode::SUCCESS => code,
        _ if failing > 0 => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    }
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
