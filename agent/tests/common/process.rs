//! Processes a test started: signals by PID, and waiting on conditions.

use std::io;
use std::process::Child;
use std::thread::sleep;
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};

/// Pause between two checks of a condition.
const POLL: Duration = Duration::from_millis(25);

/// SIGTERM, wait, then SIGKILL and reap.
pub fn stop(child: &mut Child, timeout: Duration) {
    signal(child.id(), Signal::TERM);
    let exited = wait_for("the process to exit", timeout, || Ok(child.try_wait()?.is_some()));
    if exited.is_err() {
        signal(child.id(), Signal::KILL);
        let _ = child.wait();
    }
}

/// Send a signal to one process by PID; a process already gone is fine.
pub fn signal(pid: u32, sig: Signal) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = kill_process(pid, sig);
    }
}

/// Check `cond` every few milliseconds until it holds, fails, or `timeout` passes.
pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> io::Result<bool>) -> io::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if cond()? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let msg = format!("timed out after {timeout:?} waiting for {what}");
            return Err(io::Error::new(io::ErrorKind::TimedOut, msg));
        }
        sleep(POLL);
    }
}

/// An I/O error with what was being done.
pub fn context(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}
