//! A real systemd for tests: a user manager (`systemd --user`) on a private
//! D-Bus bus, exposing the same `org.freedesktop.systemd1` API as PID 1.
//!
//! [`UserSystemd::start`] makes a temporary directory (its own `XDG_RUNTIME_DIR`,
//! `XDG_CONFIG_HOME`, `HOME`) and starts `systemd --user` in a private mount
//! namespace with a tmpfs on `/run/systemd` (it refuses to start without
//! `/run/systemd/system`, and the host's must not be touched). The manager runs
//! the bus itself, as on a node: `dbus.socket` listens on `<dir>/run/bus` and
//! `dbus.service` runs `dbus-daemon` with a private configuration. It has to: a
//! user manager connects to the bus only once its own `dbus.service` runs, and the
//! distribution's `dbus.socket` would take over a socket started beside it.
//! Where it can, the manager gets a cgroup of its own, so that managers of tests
//! running in parallel never share `app.slice`; the user units the distribution
//! ships in `*.wants` directories (gpg-agent sockets...) are masked. Units go in
//! `<dir>/config/systemd/user/`; `systemctl --user` runs against this manager.
//!
//! Dropping it stops the manager (SIGTERM, which stops its units and the bus;
//! SIGKILL after 10 s), kills by PID whatever is left in its cgroups, and removes
//! the directory.
//!
//! Note that systemd garbage-collects an inactive unit nothing references, and its
//! results with it: enable a oneshot (`[Install] WantedBy=default.target` and
//! [`UserSystemd::enable`]) to keep its state after it ran.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rustix::process::Signal;

use super::cgroup::{kill_cgroup, make_cgroups, remove_cgroup};
use super::process::{context, signal, stop, wait_for};

/// How long the bus and the manager get to come up.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the manager gets to stop its units and exit on SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Where the distribution keeps user units whose `*.wants` get masked.
const SYSTEM_USER_UNIT_DIRS: &[&str] = &[
    "/etc/systemd/user",
    "/run/systemd/user",
    "/usr/local/lib/systemd/user",
    "/usr/local/share/systemd/user",
    "/usr/lib/systemd/user",
    "/usr/share/systemd/user",
];
static INSTANCE: AtomicU32 = AtomicU32::new(0);

/// A running user manager and its bus; everything stops on drop.
#[derive(Debug)]
pub struct UserSystemd {
    dir: PathBuf,
    bus_address: String,
    manager: Option<Child>,
    cgroups: Vec<PathBuf>,
}

impl UserSystemd {
    /// Start a bus and a user manager, and wait until the manager is on the bus
    /// and has finished starting up.
    pub fn start() -> io::Result<UserSystemd> {
        let n = INSTANCE.fetch_add(1, Ordering::Relaxed);
        let tag = format!("routewarden-test-{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(&tag);
        let bus_address = format!("unix:path={}", dir.join("run/bus").display());
        let mut this = UserSystemd {
            dir,
            bus_address,
            manager: None,
            cgroups: Vec::new(),
        };
        this.make_dirs()?;
        this.write_bus_units()?;
        this.mask_distribution_units()?;
        this.cgroups = make_cgroups(&tag);
        this.start_manager()?;
        this.wait_ready()?;
        Ok(this)
    }

    /// The bus address (`unix:path=...`), as `Systemd::connect` takes it.
    pub fn bus_address(&self) -> &str {
        &self.bus_address
    }

    /// The temporary directory holding everything.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where unit files go (`$XDG_CONFIG_HOME/systemd/user`).
    pub fn unit_dir(&self) -> PathBuf {
        self.dir.join("config/systemd/user")
    }

    /// PID of the `dbus-daemon` (`MainPID` of `dbus.service`), while it runs.
    pub fn bus_pid(&self) -> io::Result<Option<u32>> {
        let pid = self.show("dbus.service", "MainPID")?;
        Ok(pid.parse::<u32>().ok().filter(|&p| p != 0))
    }

    /// PID of `systemd --user`, while it runs.
    pub fn manager_pid(&self) -> Option<u32> {
        self.manager.as_ref().map(Child::id)
    }

    /// Write a unit file (not yet loaded: see [`UserSystemd::daemon_reload`]).
    pub fn write_unit(&self, name: &str, contents: &str) -> io::Result<()> {
        let path = self.unit_dir().join(name);
        fs::write(&path, contents).map_err(|e| context(e, &format!("writing {}", path.display())))
    }

    /// Write several unit files, then reload the manager.
    pub fn add_units(&self, units: &[(&str, &str)]) -> io::Result<()> {
        for (name, contents) in units {
            self.write_unit(name, contents)?;
        }
        self.daemon_reload()
    }

    /// `systemctl --user daemon-reload`.
    pub fn daemon_reload(&self) -> io::Result<()> {
        self.systemctl_ok(&["daemon-reload"]).map(drop)
    }

    /// `systemctl --user enable UNIT`, then a reload (systemctl does not always
    /// reload here), so the target that wants the unit references it.
    pub fn enable(&self, unit: &str) -> io::Result<()> {
        self.systemctl_ok(&["enable", unit])?;
        self.daemon_reload()
    }

    /// `systemctl --user ARGS` against this manager; the exit status is the
    /// caller's to judge (starting a failing unit fails).
    pub fn systemctl(&self, args: &[&str]) -> io::Result<Output> {
        self.command("systemctl")
            .arg("--user")
            .args(args)
            .output()
            .map_err(|e| context(e, &format!("running systemctl --user {}", args.join(" "))))
    }

    /// `systemctl --user ARGS`, which must succeed; its standard output.
    pub fn systemctl_ok(&self, args: &[&str]) -> io::Result<String> {
        let out = self.systemctl(args)?;
        if !out.status.success() {
            let msg = format!(
                "systemctl --user {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return Err(io::Error::other(msg));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// One property of a unit, as `systemctl --user show -p PROPERTY --value` prints it.
    pub fn show(&self, unit: &str, property: &str) -> io::Result<String> {
        let out = self.systemctl_ok(&["show", "-p", property, "--value", unit])?;
        Ok(out.trim().to_owned())
    }

    /// Wait until a unit's property has the given value.
    pub fn wait_property(&self, unit: &str, property: &str, value: &str) -> io::Result<()> {
        let what = format!("{unit} {property}={value}");
        wait_for(&what, START_TIMEOUT, || Ok(self.show(unit, property)? == value))
    }

    /// Kill the `dbus-daemon` (SIGKILL, by its PID) after closing `dbus.socket`,
    /// so that nothing starts a new one: every client connection breaks at once and
    /// the bus address stays dead. Returns the PID it killed.
    pub fn kill_bus(&self) -> io::Result<u32> {
        let pid = self
            .bus_pid()?
            .ok_or_else(|| io::Error::other("dbus.service has no main PID"))?;
        self.systemctl_ok(&["stop", "dbus.socket"])?;
        if self.bus_pid()? != Some(pid) {
            return Err(io::Error::other("stopping dbus.socket stopped the bus too"));
        }
        signal(pid, Signal::KILL);
        let gone = || Ok(!Path::new(&format!("/proc/{pid}")).exists() || self.bus_pid()? != Some(pid));
        wait_for("the killed dbus-daemon to be gone", START_TIMEOUT, gone)?;
        Ok(pid)
    }

    /// What the bus and the manager wrote (the manager logs nowhere by default,
    /// so mostly its generators' messages).
    pub fn logs(&self) -> String {
        let read = |f: &str| fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        let (bus, manager) = (read("dbus.log"), read("manager.log"));
        format!("dbus-daemon output:\n{bus}\nsystemd --user output:\n{manager}")
    }

    fn make_dirs(&self) -> io::Result<()> {
        for sub in ["run", "config/systemd/user", "home", "data", "state", "cache"] {
            let path = self.dir.join(sub);
            fs::create_dir_all(&path).map_err(|e| context(e, &format!("creating {}", path.display())))?;
        }
        fs::set_permissions(self.dir.join("run"), fs::Permissions::from_mode(0o700))
    }

    /// A command with this instance's environment only.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("HOME", self.dir.join("home"))
            .env("XDG_RUNTIME_DIR", self.dir.join("run"))
            .env("XDG_CONFIG_HOME", self.dir.join("config"))
            .env("XDG_DATA_HOME", self.dir.join("data"))
            .env("XDG_STATE_HOME", self.dir.join("state"))
            .env("XDG_CACHE_HOME", self.dir.join("cache"))
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus_address)
            // Keep the manager off the host's system bus.
            .env(
                "DBUS_SYSTEM_BUS_ADDRESS",
                "unix:path=/nonexistent/system_bus_socket",
            )
            .stdin(Stdio::null());
        cmd
    }

    /// A log file of this instance, for a child's output.
    fn log_file(&self, name: &str) -> io::Result<fs::File> {
        fs::File::create(self.dir.join(name))
    }

    /// `dbus.socket` and `dbus.service` of this instance, started at boot.
    fn write_bus_units(&self) -> io::Result<()> {
        let config = self.dir.join("dbus.conf");
        fs::write(&config, BUS_CONFIG)?;
        let service = bus_service(&config, &self.dir.join("dbus.log"));
        self.write_unit("dbus.socket", BUS_SOCKET)?;
        self.write_unit("dbus.service", &service)?;
        for (target, unit) in [
            ("sockets.target", "dbus.socket"),
            ("default.target", "dbus.service"),
        ] {
            let wants = self.unit_dir().join(format!("{target}.wants"));
            fs::create_dir_all(&wants)?;
            symlink(self.unit_dir().join(unit), wants.join(unit))?;
        }
        Ok(())
    }

    /// Mask the user units the distribution wants at login (the bus units are
    /// this instance's own, written before).
    fn mask_distribution_units(&self) -> io::Result<()> {
        let names = SYSTEM_USER_UNIT_DIRS
            .iter()
            .flat_map(|dir| wanted_units(Path::new(dir)));
        for name in names {
            let link = self.unit_dir().join(&name);
            if fs::symlink_metadata(&link).is_err() {
                symlink("/dev/null", &link)?;
            }
        }
        Ok(())
    }

    fn start_manager(&mut self) -> io::Result<()> {
        let log = self.log_file("manager.log")?;
        let mut cmd = self.command("unshare");
        cmd.args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            MANAGER_SCRIPT,
            "sh",
        ])
        .args(self.cgroups.iter().map(|p| p.join("cgroup.procs")))
        .stdout(log.try_clone()?)
        .stderr(log);
        let child = cmd.spawn().map_err(|e| context(e, "starting systemd --user"))?;
        self.manager = Some(child);
        Ok(())
    }

    /// Wait until systemd is on the bus and its startup job is done.
    fn wait_ready(&mut self) -> io::Result<()> {
        let what = format!("systemd --user on {} to finish starting", self.bus_address);
        wait_for(&what, START_TIMEOUT, || {
            self.check_running()?;
            let state = self.system_state()?;
            Ok(state.contains("\"running\"") || state.contains("\"degraded\""))
        })
        .map_err(|e| io::Error::other(format!("{e}\n{}", self.logs())))
    }

    /// `SystemState` of the manager, read over the bus (empty if not there yet).
    fn system_state(&self) -> io::Result<String> {
        let out = self
            .command("busctl")
            .arg(format!("--address={}", self.bus_address))
            .args(["--timeout=2", "get-property", "org.freedesktop.systemd1"])
            .args(["/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager"])
            .arg("SystemState")
            .output()
            .map_err(|e| context(e, "running busctl"))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// An error if the manager has exited.
    fn check_running(&mut self) -> io::Result<()> {
        let manager = self.manager.as_mut().and_then(|c| c.try_wait().ok().flatten());
        match manager {
            Some(status) => Err(io::Error::other(format!("systemd --user exited: {status}"))),
            None => Ok(()),
        }
    }

    fn stop_manager(&mut self) {
        if let Some(mut manager) = self.manager.take() {
            stop(&mut manager, STOP_TIMEOUT);
        }
        for cgroup in &self.cgroups {
            kill_cgroup(cgroup);
        }
        for cgroup in &self.cgroups {
            remove_cgroup(cgroup, STOP_TIMEOUT);
        }
    }
}

impl Drop for UserSystemd {
    fn drop(&mut self) {
        self.stop_manager();
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            let _ = writeln!(io::stderr(), "removing {}: {e}", self.dir.display());
        }
    }
}

/// Mounts a private `/run/systemd` (systemd --user wants `/run/systemd/system`),
/// joins the cgroups given as arguments, and becomes the manager, logging nowhere
/// (it would otherwise write to `/dev/console`).
const MANAGER_SCRIPT: &str = r#"set -e
mkdir -p /run/systemd
mount -t tmpfs tmpfs /run/systemd
mkdir -p /run/systemd/system
for procs in "$@"; do echo $$ > "$procs" || true; done
exec /lib/systemd/systemd --user --log-target=null
"#;

/// The bus: a session bus open to its own user only, activating nothing.
const BUS_CONFIG: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>systemd:</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#;

/// The bus socket, where `DBUS_SESSION_BUS_ADDRESS` points.
const BUS_SOCKET: &str = "[Unit]
Description=routewarden test bus socket

[Socket]
ListenStream=%t/bus
";

/// The bus daemon, on the socket systemd hands it.
fn bus_service(config: &Path, log: &Path) -> String {
    format!(
        "[Unit]
Description=routewarden test bus
After=dbus.socket

[Service]
ExecStart=dbus-daemon --config-file={} --nofork --nopidfile --systemd-activation
StandardOutput=append:{log}
StandardError=append:{log}
",
        config.display(),
        log = log.display()
    )
}

/// Names linked from `*.wants` and `*.requires` directories under `dir`.
fn wanted_units(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let deps = entries.flatten().filter(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        name.ends_with(".wants") || name.ends_with(".requires")
    });
    deps.flat_map(|d| fs::read_dir(d.path()).into_iter().flatten().flatten())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}
