//! Test support: network namespaces made by the test (veth, no dummy module here),
//! code, the agent and HTTP requests run inside one. Everything is
//! removed on drop, also when a test fails. [`verdicts`]: `serve`'s `/drift`
//! against a fresh `check`.

#![allow(dead_code)]

pub mod verdicts;

use std::future::Future;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A named network namespace `rw-t-<pid>-<n>`, deleted on drop.
pub struct NetNs {
    /// Its name under /run/netns.
    pub name: String,
}

impl NetNs {
    /// A namespace with `ens5` (172.18.0.2/16) and its peer `gw0` up.
    pub fn new() -> NetNs {
        let ns = NetNs::bare();
        ns.veth("ens5", "gw0", &["172.18.0.2/16"]);
        ns
    }

    /// A namespace holding only its loopback, up.
    pub fn bare() -> NetNs {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("rw-t-{}-{n}", std::process::id());
        run("ip", &["netns", "add", &name]);
        let ns = NetNs { name };
        ns.ip("link set lo up");
        ns
    }

    /// A veth pair `dev`/`peer`, both up, `dev` holding `addrs`; `dev`'s ifindex.
    pub fn veth(&self, dev: &str, peer: &str, addrs: &[&str]) -> u32 {
        self.ip(&format!("link add {dev} type veth peer name {peer}"));
        self.ip(&format!("link set {dev} up"));
        self.ip(&format!("link set {peer} up"));
        for addr in addrs {
            self.ip(&format!("addr add {addr} dev {dev} nodad"));
        }
        self.ifindex(dev)
    }

    /// The interface index of `dev`, as `ip -o link` prints it.
    pub fn ifindex(&self, dev: &str) -> u32 {
        let out = output("ip", &["-n", &self.name, "-o", "link", "show", "dev", dev]);
        let index = out.split(':').next().expect("ip -o link line");
        index.trim().parse().expect("ifindex")
    }

    /// `ip -n NS ARGS...` (words split on whitespace); panics on failure.
    pub fn ip(&self, args: &str) {
        let mut all = vec!["-n", &self.name];
        all.extend(args.split_whitespace());
        run("ip", &all);
    }

    /// `ip -n NS -force -batch FILE` with these lines: every line is tried, those
    /// the kernel refuses (a duplicate, a route to delete that is not there) are
    /// skipped.
    pub fn ip_batch_force(&self, lines: &str) {
        self.batch(lines, &["-force"]);
    }

    /// [`NetNs::ip_batch_force`] with `-6`: for `ip rule` lines, which do not
    /// take the family from their addresses.
    pub fn ip6_batch_force(&self, lines: &str) {
        self.batch(lines, &["-6", "-force"]);
    }

    /// `ip -n NS -batch FILE` with these lines.
    pub fn ip_batch(&self, lines: &str) {
        let out = self.batch(lines, &[]);
        assert!(
            out.status.success(),
            "ip -batch: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn batch(&self, lines: &str, options: &[&str]) -> std::process::Output {
        let path = std::env::temp_dir().join(format!(
            "{}-batch-{}",
            self.name,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, lines).expect("write batch file");
        let mut command = Command::new("ip");
        command.args(["-n", &self.name]).args(options);
        let result = command.arg("-batch").arg(&path).output();
        let _ = std::fs::remove_file(&path);
        result.expect("spawn ip")
    }

    /// A command run inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Run `f` on a thread inside the namespace, return what it returns.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = PathBuf::from("/run/netns").join(&self.name);
        std::thread::scope(|s| {
            s.spawn(|| {
                enter(&path);
                f()
            })
            .join()
            .expect("namespace thread panicked")
        })
    }

    /// Run an async block inside the namespace on a current-thread runtime.
    pub fn block_on<F: Future>(&self, f: impl FnOnce() -> F + Send) -> F::Output
    where
        F::Output: Send,
    {
        self.run(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            rt.block_on(f())
        })
    }

    /// GET `path` from 127.0.0.1:`port` inside the namespace: (status, body).
    pub fn http_get(&self, port: u16, path: &str) -> Option<(u16, String)> {
        self.http_raw(
            port,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        )
    }

    /// Send a raw request from inside the namespace.
    pub fn http_raw(&self, port: u16, request: &str) -> Option<(u16, String)> {
        self.http_exchange(port, request)
            .map(|(status, _, body)| (status, body))
    }

    /// GET `path` from 127.0.0.1:`port` inside the namespace: (status, head, body),
    /// the head being the status line and the headers.
    pub fn http_get_with_head(&self, port: u16, path: &str) -> Option<(u16, String, String)> {
        self.http_exchange(
            port,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        )
    }

    fn http_exchange(&self, port: u16, request: &str) -> Option<(u16, String, String)> {
        self.run(|| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
            s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
            s.write_all(request.as_bytes()).ok()?;
            let mut out = String::new();
            s.read_to_string(&mut out).ok()?;
            let status = out.split_whitespace().nth(1)?.parse().ok()?;
            let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
            Some((status, head.to_owned(), body.to_owned()))
        })
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// Move this thread into the namespace at `path`.
pub fn enter(path: &Path) {
    let f = std::fs::File::open(path).expect("open netns");
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
}

/// Run a command, panicking with its stderr on failure.
pub fn run(program: &str, args: &[&str]) {
    output(program, args);
}

/// Run a command, return its stdout; panic with its stderr when it fails.
pub fn output(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().expect("spawn");
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Poll `f` until it returns Some, or panic after `timeout` with `what`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The agent binary.
pub fn agent() -> &'static str {
    env!("CARGO_BIN_EXE_routewarden")
}

/// `routewarden serve` running in a namespace; SIGTERM and reaped on drop.
pub struct Agent {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Agent {
    pub fn start(ns: &NetNs, machineconfig: &Path, extra: &[&str]) -> Agent {
        Agent::start_as(ns, machineconfig, extra, None)
    }

    /// Start it as another uid (`setpriv`, no capabilities) when `user` is given.
    pub fn start_as(ns: &NetNs, machineconfig: &Path, extra: &[&str], user: Option<&str>) -> Agent {
        let input = ["--machineconfig", machineconfig.to_str().expect("utf-8")];
        Agent::spawn(ns, &input, extra, user)
    }

    /// Start it on the node files under `host_root` (no `--machineconfig`).
    pub fn start_node(ns: &NetNs, host_root: &Path, extra: &[&str]) -> Agent {
        let input = ["--host-root", host_root.to_str().expect("utf-8")];
        Agent::spawn(ns, &input, extra, None)
    }

    fn spawn(ns: &NetNs, input: &[&str], extra: &[&str], user: Option<&str>) -> Agent {
        let port = 19000 + (COUNTER.fetch_add(1, Ordering::Relaxed) as u16 % 1000);
        let log = std::env::temp_dir().join(format!("{}-agent-{port}.log", ns.name));
        let stderr = std::fs::File::create(&log).expect("log file");
        let listen = format!("127.0.0.1:{port}");
        let mut command = match user {
            Some(uid) => {
                let mut c = ns.command("setpriv");
                let (reuid, regid) = (format!("--reuid={uid}"), format!("--regid={uid}"));
                c.args([
                    reuid.as_str(),
                    regid.as_str(),
                    "--clear-groups",
                    "--inh-caps=-all",
                    agent(),
                ]);
                c
            }
            None => ns.command(agent()),
        };
        let child = command
            .arg("serve")
            .args(input)
            .args(["--listen", &listen])
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("RW_AGENT_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start agent");
        let agent = Agent { child, port, log };
        wait_for(Duration::from_secs(15), "/readyz 200", || {
            ns.http_get(port, "/readyz").filter(|(s, _)| *s == 200)
        });
        agent
    }

    /// `/metrics` as text ("" when it does not answer).
    pub fn metrics(&self, ns: &NetNs) -> String {
        ns.http_get(self.port, "/metrics")
            .map(|(_, b)| b)
            .unwrap_or_default()
    }

    /// Wait until `metric` (the first series whose line holds every needle) reads
    /// `want` (None: absent); on timeout, panic with /metrics and the agent's log.
    pub fn wait_metric(&self, ns: &NetNs, metric: &str, needles: &[&str], want: Option<f64>) {
        let what = format!("{metric}{needles:?} == {want:?}");
        let start = Instant::now();
        loop {
            let last = self.metrics(ns);
            if metric_value(&last, metric, needles) == want {
                return;
            }
            if start.elapsed() > Duration::from_secs(20) {
                panic!(
                    "{what} not reached in 20 s\n/metrics:\n{last}\nagent log:\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Send a signal (`STOP`, `CONT`...).
    pub fn signal(&self, name: &str) {
        run("kill", &[&format!("-{name}"), &self.child.id().to_string()]);
    }

    /// Panic with the log when the agent has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("the agent exited ({status}); its log:\n{}", self.logs());
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM and wait; the exit status.
    pub fn stop(&mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if start.elapsed() > Duration::from_secs(5) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The resident set size of a running process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// The value of the first series of `metric` whose line contains every `needle`.
pub fn metric_value(body: &str, metric: &str, needles: &[&str]) -> Option<f64> {
    body.lines()
        .filter(|l| l.starts_with(metric) && l[metric.len()..].starts_with(['{', ' ']))
        .find(|l| needles.iter().all(|n| l.contains(n)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// A MachineConfig whose oneshots each add one route (10.1.N.0/24).
pub fn machineconfig(units: &[&str]) -> String {
    let units: Vec<serde_json::Value> = units
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let contents = format!(
                "[Service]\nType=oneshot\nExecStart=/usr/sbin/ip route add 10.1.{i}.0/24 via 172.18.0.1 dev ens5\n[Install]\nWantedBy=multi-user.target\n"
            );
            serde_json::json!({"name": name, "enabled": true, "contents": contents})
        })
        .collect();
    serde_json::json!({
        "kind": "MachineConfig",
        "metadata": {"name": "rendered-worker-test"},
        "spec": {"config": {"ignition": {"version": "3.2.0"}, "systemd": {"units": units}}}
    })
    .to_string()
}

/// A MachineConfig with one oneshot `r.service` running `ip LINE` for each line
/// (routes and rules declared with iproute2, no NetworkManager).
pub fn ip_machineconfig(lines: &[&str]) -> String {
    let execs: String = lines
        .iter()
        .map(|l| format!("ExecStart=/usr/sbin/ip {l}\n"))
        .collect();
    let unit = format!("[Service]\nType=oneshot\n{execs}[Install]\nWantedBy=multi-user.target\n");
    serde_json::json!({
        "kind": "MachineConfig", "metadata": {"name": "kernel-test"},
        "spec": {"config": {"ignition": {"version": "3.2.0"},
                            "systemd": {"units": [{"name": "r.service", "enabled": true, "contents": unit}]}}}
    })
    .to_string()
}

/// `routewarden check --no-units --format json` on MachineConfig text `mc`,
/// inside the namespace: its exit code and report.
pub fn check_json(ns: &NetNs, mc: &str) -> (Option<i32>, serde_json::Value) {
    let path = std::env::temp_dir().join(format!(
        "{}-check-{}.json",
        ns.name,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, mc).expect("write");
    let out = ns
        .command(agent())
        .args([
            "check",
            "--no-units",
            "--no-networkmanager",
            "--format",
            "json",
            "--machineconfig",
        ])
        .arg(&path)
        .output()
        .expect("run");
    let _ = std::fs::remove_file(&path);
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), v)
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("rw-t-{}-{n}-{tag}", std::process::id()));
        std::fs::create_dir_all(&path).expect("mkdir");
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
