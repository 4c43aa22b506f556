//! Unit files and helpers for tests of `observe::units` against a real systemd
//! ([`UserSystemd`]).

use std::time::Duration;

use futures::StreamExt;
use routewarden::model::{UnitName, UnitStatus};
use routewarden::observe::units::{Systemd, UnitEvent, UnitWatch};

pub use super::user_systemd::UserSystemd;

/// How long a test waits for systemd to reach a state or send a signal.
pub const WAIT: Duration = Duration::from_secs(20);

/// A oneshot that exits 0 (`WantedBy=default.target`: enabled, it stays loaded).
pub const SUCCEEDS: &str = "[Service]
Type=oneshot
ExecStart=/bin/true

[Install]
WantedBy=default.target
";

/// A oneshot that exits 8.
pub const FAILS: &str = "[Service]
Type=oneshot
ExecStart=/bin/sh -c 'exit 8'

[Install]
WantedBy=default.target
";

/// A oneshot that stays active after it exits.
pub const REMAINS: &str = "[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true

[Install]
WantedBy=default.target
";

/// A oneshot its condition always skips.
pub const SKIPPED: &str = "[Unit]
ConditionPathExists=/nonexistent/routewarden

[Service]
Type=oneshot
ExecStart=/bin/true

[Install]
WantedBy=default.target
";

/// A oneshot without `[Install]` (static).
pub const STATIC: &str = "[Service]
Type=oneshot
ExecStart=/bin/true
";

/// A service that keeps running.
pub const LONG_RUNNING: &str = "[Service]
ExecStart=/bin/sleep 1000
";

/// A valid unit name.
pub fn unit(name: &str) -> UnitName {
    UnitName::new(name).expect("valid unit name")
}

/// A user systemd with these unit files loaded and the `enabled` ones enabled.
pub fn start_systemd(units: &[(&str, &str)], enabled: &[&str]) -> UserSystemd {
    let sd = UserSystemd::start().expect("a user systemd with its bus");
    sd.add_units(units).expect("unit files loaded");
    for name in enabled {
        sd.enable(name).expect("unit enabled");
    }
    sd
}

/// A [`Systemd`] on the test bus.
pub async fn connect(sd: &UserSystemd) -> Systemd {
    Systemd::connect(Some(sd.bus_address()))
        .await
        .expect("connected to the test bus")
}

/// Read one unit until `done` holds; its last status.
pub async fn wait_status(
    systemd: &Systemd,
    name: &UnitName,
    what: &str,
    done: impl Fn(&UnitStatus) -> bool,
) -> UnitStatus {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut statuses = systemd
            .statuses(std::slice::from_ref(name))
            .await
            .expect("statuses");
        let status = statuses.pop().expect("one status per unit");
        if done(&status) {
            return status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name}: waited {WAIT:?} for {what}, last {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The next event that `wanted` accepts, skipping others.
pub async fn next_event(watch: &mut UnitWatch, wanted: &UnitEvent) -> UnitEvent {
    let found = tokio::time::timeout(WAIT, async {
        while let Some(event) = watch.next().await {
            if &event == wanted {
                return Some(event);
            }
        }
        None
    });
    match found.await {
        Ok(Some(event)) => event,
        Ok(None) => panic!("the watch ended before {wanted:?}"),
        Err(_) => panic!("no {wanted:?} within {WAIT:?}"),
    }
}

/// `systemctl --user start NAME`; whether it succeeded.
pub fn systemctl_start(sd: &UserSystemd, name: &str) -> bool {
    let out = sd.systemctl(&["start", name]).expect("systemctl runs");
    out.status.success()
}
