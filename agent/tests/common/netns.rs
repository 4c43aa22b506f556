//! Throwaway named network namespaces, deleted even when a test fails, and a way
//! to run code inside one.

use std::fs::File;
use std::future::Future;
use std::io::Write;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A named network namespace `rw-t-<pid>-<n>`, deleted on drop.
pub struct Netns {
    /// Its name under /run/netns.
    pub name: String,
}

impl Netns {
    /// Create the namespace and set its loopback up.
    pub fn new() -> Netns {
        let name = format!(
            "rw-t-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        run("ip", &["netns", "add", &name]);
        let ns = Netns { name };
        ns.ip("link set lo up");
        ns
    }

    /// Run `ip -n NAME ARGS` (split on whitespace) and require success.
    pub fn ip(&self, args: &str) {
        let mut all = vec!["-n", &self.name];
        all.extend(args.split_whitespace());
        run("ip", &all);
    }

    /// Run `ip -n NAME -batch FILE` with these lines.
    pub fn batch(&self, lines: impl Iterator<Item = String>) {
        let path = std::env::temp_dir().join(format!("{}.batch", self.name));
        let mut file = File::create(&path).expect("create batch file");
        for line in lines {
            writeln!(file, "{line}").expect("write batch file");
        }
        drop(file);
        run(
            "ip",
            &["-n", &self.name, "-batch", path.to_str().expect("utf-8 path")],
        );
        let _ = std::fs::remove_file(path);
    }

    /// A veth pair `dev`/`peer` in the namespace, both up, `dev` holding `addrs`.
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

    /// Run `f` on a thread inside the namespace, return what it returns.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|s| {
            s.spawn(|| {
                let file = File::open(&path).expect("open namespace file");
                setns(&file, CloneFlags::CLONE_NEWNET).expect("setns into the test namespace");
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
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// Run a command, panic with its stderr when it fails.
pub fn run(program: &str, args: &[&str]) {
    output(program, args);
}

/// Run a command, return its stdout; panic with its stderr when it fails.
pub fn output(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().expect("spawn command");
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Poll `f` until it returns `Some`, for at most `timeout`.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
