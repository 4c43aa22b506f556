//! Command-line flags. Every host path is resolved under `--host-root`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::PossibleValue;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::input::Lookup;
use crate::paths::HostRoot;
use crate::remediate::Mode;

/// Checks that the static routes a node's MachineConfig declares are in the
/// kernel, and explains each one that is not.
#[derive(Debug, Parser)]
#[command(name = "routewarden", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Logging (any command, before or after its name).
    #[command(flatten)]
    pub log: LogArgs,
}

/// Where log lines go (stderr) and which: `--log-level` wins over `RUST_LOG`.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log line format on stderr.
    #[arg(long, value_enum, default_value = "text", global = true)]
    pub log_format: crate::logging::LogFormat,
    /// Log level: error, warn, info, debug, trace, or a RUST_LOG filter such as
    /// `warn,routewarden=debug`. Default: RUST_LOG, else info for serve and warn
    /// for the other commands.
    #[arg(long, value_name = "LEVEL", global = true)]
    pub log_level: Option<String>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the routes and units the MachineConfig declares (no live node needed).
    Expected(ExpectedArgs),
    /// Compare the intent with the kernel and systemd once; exit 1 on drift.
    Check(CheckArgs),
    /// Run the daemon: watch for drift and serve Prometheus metrics.
    Serve(ServeArgs),
    /// Check MachineConfigs and NNCPs for fragile route declarations (no node
    /// needed); exit 1 on findings at or above --fail-on.
    Lint(LintArgs),
}

/// `lint` output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LintFormat {
    /// `FILE:LINE: LEVEL RWnnn message` lines and a summary.
    Text,
    /// JSON for tools.
    Json,
    /// GitHub Actions workflow annotations.
    Github,
    /// SARIF 2.1.0.
    Sarif,
}

/// The lowest level that makes `lint` exit 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warning,
    /// Never (exit 0 whatever is found).
    Never,
}

/// `routewarden lint`.
#[derive(Debug, Args)]
pub struct LintArgs {
    /// Files or directories (recursive: *.yaml, *.yml, *.json); `-` or nothing
    /// for stdin (e.g. `kustomize build` output).
    #[arg(value_name = "PATH")]
    pub paths: Vec<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub format: LintFormat,
    /// Exit 1 when a finding is at or above this level.
    #[arg(long, value_enum, default_value = "error")]
    pub fail_on: FailOn,
    /// Lint as on the node NAME: its per-host nmstate file
    /// (/etc/nmstate/openshift/<short name>.yml) applies, and NAME is its
    /// `kubernetes.io/hostname` label: an NNCP whose nodeSelector names another
    /// hostname does not apply (with or without --node-labels).
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,
    /// The node's labels (`k=v,k2=v2`): NNCPs apply when their nodeSelector
    /// matches (all apply when not given; --node-name adds
    /// `kubernetes.io/hostname=NAME`).
    #[arg(long, value_name = "K=V,...", value_parser = parse_labels)]
    pub node_labels: Option<BTreeMap<String, String>>,
}

/// `k=v,k2=v2` (a key alone means an empty value, as `node-role.kubernetes.io/worker=`).
pub fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (k, v) = item.split_once('=').unwrap_or((item, ""));
        if k.is_empty() {
            return Err(format!("{item:?} has no label key"));
        }
        out.insert(k.to_owned(), v.to_owned());
    }
    Ok(out)
}

/// Where the intent comes from.
#[derive(Debug, Clone, Args)]
pub struct IntentArgs {
    /// The MachineConfig (JSON or YAML; `-` for stdin). Default: the first of the
    /// node's <host-root>/etc/machine-config-daemon/currentconfig,
    /// /etc/mcd-currentconfig.json and /etc/mcs-machine-config-content.json that
    /// holds one (none: the source is absent and the intent empty).
    #[arg(long, value_name = "PATH")]
    pub machineconfig: Option<String>,
    /// Where the host's root filesystem is mounted.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub host_root: PathBuf,
    /// The node's name, for per-host nmstate files. Default: the hostname.
    #[arg(long, value_name = "NAME", env = "NODE_NAME")]
    pub node_name: Option<String>,
}

impl IntentArgs {
    /// The host root.
    pub fn host(&self) -> HostRoot {
        HostRoot::new(&self.host_root)
    }

    /// Where to find the MachineConfig.
    pub fn lookup(&self) -> Lookup {
        match self.machineconfig.as_deref() {
            Some("-") => Lookup::Stdin,
            Some(p) => Lookup::File(PathBuf::from(p)),
            None => Lookup::Node(self.host()),
        }
    }
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table for people.
    Text,
    /// JSON for tools.
    Json,
}

/// A source of truth that declares routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IntentSource {
    /// The rendered MachineConfig.
    Machineconfig,
    /// NetworkManager's applied connections and autoconnect profiles (D-Bus).
    Networkmanager,
}

/// NetworkManager as a source of truth.
#[derive(Debug, Clone, Args)]
pub struct NetworkManagerArgs {
    /// Where the expected routes come from (comma-separated). Off the node (to
    /// lint a rendered config), use `--intent machineconfig`.
    #[arg(
        long = "intent",
        value_name = "SOURCES",
        value_enum,
        value_delimiter = ',',
        default_value = "machineconfig,networkmanager"
    )]
    pub intent: Vec<IntentSource>,
    /// Do not ask NetworkManager: no routes from it, no reasons from its view.
    #[arg(long)]
    pub no_networkmanager: bool,
}

impl NetworkManagerArgs {
    /// Whether the MachineConfig is read.
    pub fn machineconfig(&self) -> bool {
        self.intent.contains(&IntentSource::Machineconfig)
    }

    /// Whether NetworkManager's routes are expected.
    pub fn networkmanager_intent(&self) -> bool {
        self.intent.contains(&IntentSource::Networkmanager) && !self.no_networkmanager
    }

    /// Refuse a combination that leaves nothing to check.
    pub fn validate(&self) -> Result<(), String> {
        if !self.machineconfig() && !self.networkmanager_intent() {
            return Err("--intent networkmanager with --no-networkmanager leaves no routes to check".into());
        }
        Ok(())
    }
}

/// `routewarden expected`.
#[derive(Debug, Args)]
pub struct ExpectedArgs {
    /// Where the intent comes from.
    #[command(flatten)]
    pub intent: IntentArgs,
    /// NetworkManager as a source of truth.
    #[command(flatten)]
    pub networkmanager: NetworkManagerArgs,
    /// D-Bus address of the system bus, for NetworkManager (else
    /// DBUS_SYSTEM_BUS_ADDRESS, else the system bus).
    #[arg(long, value_name = "ADDR")]
    pub dbus_address: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub format: Format,
}

/// How to reach systemd.
#[derive(Debug, Clone, Args)]
pub struct UnitsArgs {
    /// D-Bus address of the system bus (else DBUS_SYSTEM_BUS_ADDRESS, else the
    /// system bus).
    #[arg(long, value_name = "ADDR")]
    pub dbus_address: Option<String>,
    /// Do not ask systemd (hosts without systemd); units are reported skipped.
    #[arg(long)]
    pub no_units: bool,
}

/// `routewarden check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Where the intent comes from.
    #[command(flatten)]
    pub intent: IntentArgs,
    /// How to reach systemd.
    #[command(flatten)]
    pub units: UnitsArgs,
    /// NetworkManager as a source of truth.
    #[command(flatten)]
    pub networkmanager: NetworkManagerArgs,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub format: Format,
    /// The daemon's record of remediation attempts, shown per route when there.
    #[arg(long, value_name = "PATH", default_value = crate::remediate::state::DEFAULT_PATH)]
    pub remediation_state: PathBuf,
}

/// `routewarden serve`.
#[derive(Debug, Args)]
#[command(mut_arg("machineconfig", |a| a.help(SERVE_MACHINECONFIG)))]
pub struct ServeArgs {
    /// Where the intent comes from (a file: it is watched for changes).
    #[command(flatten)]
    pub intent: IntentArgs,
    /// How to reach systemd.
    #[command(flatten)]
    pub units: UnitsArgs,
    /// NetworkManager as a source of truth.
    #[command(flatten)]
    pub networkmanager: NetworkManagerArgs,
    /// HTTP listen address: ADDR:PORT (IPv6 as [addr]:port or addr:port),
    /// localhost:PORT, or :PORT for every address (IPv4 and IPv6).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:9810", value_parser = parse_listen)]
    pub listen: SocketAddr,
    /// Period of the full re-read of the routing table (e.g. 5m, 30s).
    #[arg(long, value_name = "DUR", default_value = "5m", value_parser = parse_duration)]
    pub resync_interval: Duration,
    /// Remediation (off by default).
    #[command(flatten)]
    pub remediate: RemediateArgs,
}

/// `serve --remediate`: put missing routes back through their owners.
#[derive(Debug, Clone, Args)]
pub struct RemediateArgs {
    /// Put a missing route back through its owner: restart the unit that adds it,
    /// re-apply or activate its NetworkManager connection. `dry-run` decides and
    /// logs and counts exactly as `on` does, and changes nothing. Given twice,
    /// the last wins (an overlay may turn the component's `on` into `dry-run`).
    #[arg(
        long,
        value_name = "MODE",
        value_enum,
        default_value = "off",
        overrides_with = "remediate"
    )]
    pub remediate: Mode,
    /// How long a route stays missing before its owner is acted on.
    #[arg(long, value_name = "DUR", default_value = "60s", value_parser = parse_duration)]
    pub remediate_after: Duration,
    /// The first wait between two attempts on one owner (doubled after each,
    /// capped at 1h). For tests.
    #[arg(long, value_name = "DUR", default_value = "1m", value_parser = parse_duration, hide = true)]
    pub remediate_backoff: Duration,
    /// The file the daemon records its attempts in (read back by `check`).
    #[arg(long, value_name = "PATH", default_value = crate::remediate::state::DEFAULT_PATH)]
    pub remediation_state: PathBuf,
}

/// `--remediate off|dry-run|on`, spelled as [`Mode::as_str`] spells them.
impl ValueEnum for Mode {
    fn value_variants<'a>() -> &'a [Mode] {
        &[Mode::Off, Mode::DryRun, Mode::On]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.as_str()))
    }
}

/// `serve --machineconfig`: a file it watches, never stdin.
const SERVE_MACHINECONFIG: &str = "The MachineConfig (JSON or YAML), a file the daemon watches for \
changes (not stdin). Default: the first of the node's \
<host-root>/etc/machine-config-daemon/currentconfig, /etc/mcd-currentconfig.json and \
/etc/mcs-machine-config-content.json that holds one (none: the source is absent and the intent empty).";

/// `ADDR:PORT`, also an unbracketed IPv6 address (`fd00::1:9810`), which is what
/// `$(HOST_IP):9810` gives on an IPv6 node; `localhost:PORT` (127.0.0.1, never
/// looked up) and `:PORT`, every address (`[::]`, which takes IPv4 too; `serve`
/// falls back to 0.0.0.0 where IPv6 is off), as node_exporter reads them.
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let bad = || format!("{text:?} is not ADDR:PORT, localhost:PORT or :PORT");
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let ip: IpAddr = match host {
        "" => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        "localhost" => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        _ => host.trim_matches(['[', ']']).parse().map_err(|_| bad())?,
    };
    Ok(SocketAddr::new(ip, port))
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| format!("{text:?}: {e}"))?;
    if d < Duration::from_secs(1) {
        return Err(format!("{text:?}: at least 1s"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(
            parse_listen("127.0.0.1:9810").map(|a| a.to_string()),
            Ok("127.0.0.1:9810".into())
        );
        assert_eq!(
            parse_listen("[fd00::1]:9810").map(|a| a.to_string()),
            Ok("[fd00::1]:9810".into())
        );
        assert_eq!(
            parse_listen("fd00::1:9810").map(|a| a.to_string()),
            Ok("[fd00::1]:9810".into())
        );
        assert_eq!(
            parse_listen("localhost:9810").map(|a| a.to_string()),
            Ok("127.0.0.1:9810".into())
        );
        assert_eq!(
            parse_listen(":9810").map(|a| a.to_string()),
            Ok("[::]:9810".into())
        );
        assert!(parse_listen("1.2.3.4").is_err());
        assert!(parse_listen(":http").is_err());
        assert!(parse_listen("example.com:9810").is_err());
    }

    #[test]
    fn labels() {
        let l = parse_labels("node-role.kubernetes.io/worker=,zone=a").expect("labels");
        assert_eq!(
            l.get("node-role.kubernetes.io/worker").map(String::as_str),
            Some("")
        );
        assert_eq!(l.get("zone").map(String::as_str), Some("a"));
        assert_eq!(
            parse_labels("solo")
                .expect("key alone")
                .get("solo")
                .map(String::as_str),
            Some("")
        );
        assert!(parse_labels("=x").is_err());
    }

    #[test]
    fn intent_sources() {
        let parse = |args: &[&str]| Cli::try_parse_from([&["routewarden", "check"], args].concat());
        let Command::Check(c) = parse(&[]).expect("defaults").command else {
            panic!("check")
        };
        assert!(c.networkmanager.machineconfig() && c.networkmanager.networkmanager_intent());
        let Command::Check(c) = parse(&["--intent", "networkmanager"]).expect("one").command else {
            panic!("check")
        };
        assert!(!c.networkmanager.machineconfig() && c.networkmanager.validate().is_ok());
        let Command::Check(c) = parse(&["--intent", "networkmanager", "--no-networkmanager"])
            .expect("parses")
            .command
        else {
            panic!("check")
        };
        assert!(c.networkmanager.validate().is_err());
        assert!(parse(&["--intent", "kernel"]).is_err());
    }

    #[test]
    fn remediate_defaults_off_and_the_last_given_wins() {
        let parse = |args: &[&str]| Cli::try_parse_from([&["routewarden", "serve"], args].concat());
        let mode = |args: &[&str]| match parse(args).map(|c| c.command) {
            Ok(Command::Serve(s)) => Ok((s.remediate.remediate, s.remediate.remediate_after)),
            Ok(_) => Err("not serve".to_owned()),
            Err(e) => Err(e.to_string()),
        };
        assert_eq!(mode(&[]), Ok((Mode::Off, Duration::from_secs(60))));
        assert_eq!(
            mode(&["--remediate=on", "--remediate=dry-run", "--remediate-after", "2m"]),
            Ok((Mode::DryRun, Duration::from_secs(120)))
        );
        assert_eq!(
            mode(&["--remediate", "on"]),
            Ok((Mode::On, Duration::from_secs(60)))
        );
        assert!(mode(&["--remediate=yes"]).is_err());
        assert!(mode(&["--remediate-after", "10ms"]).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert!(parse_duration("10ms").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
