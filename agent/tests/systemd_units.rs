//! Observe stage, systemd side, against a real systemd: a user manager on a
//! private bus (see `common/user_systemd.rs`), which serves the same
//! `org.freedesktop.systemd1` API as PID 1. Unit states, change signals, and a bus
//! that goes away.

mod common;

use std::time::Duration;

use futures::StreamExt;
use routewarden::model::{ActiveState, UnitName};
use routewarden::observe::units::{Systemd, UnitEvent};

use common::silent_socket::SilentSocket;
use common::systemd_units::*;

#[tokio::test]
async fn finished_oneshots_report_their_result() {
    let units = [
        ("ok.service", SUCCEEDS),
        ("fail.service", FAILS),
        ("remain.service", REMAINS),
    ];
    let sd = start_systemd(&units, &["ok.service", "fail.service", "remain.service"]);
    assert!(systemctl_start(&sd, "ok.service"), "ok.service starts");
    assert!(systemctl_start(&sd, "remain.service"), "remain.service starts");
    assert!(!systemctl_start(&sd, "fail.service"), "fail.service fails");
    let systemd = connect(&sd).await;
    let (ok, fail, remain) = (unit("ok.service"), unit("fail.service"), unit("remain.service"));
    wait_status(&systemd, &fail, "failed", |s| {
        s.active_state == ActiveState::Failed
    })
    .await;

    let all = systemd
        .statuses(&[ok.clone(), fail.clone(), remain.clone()])
        .await
        .expect("statuses");
    let names: Vec<&UnitName> = all.iter().map(|s| &s.name).collect();
    assert_eq!(names, [&ok, &fail, &remain], "one status per name, in order");

    let st = &all[0];
    assert_eq!(
        (st.load_state.as_str(), st.sub_state.as_str()),
        ("loaded", "dead")
    );
    assert_eq!(st.active_state, ActiveState::Inactive);
    assert_eq!(st.unit_file_state, "enabled");
    assert!(
        st.condition_result && st.condition_usec > 0 && st.inactive_exit_usec > 0,
        "{st:?}"
    );
    let svc = st
        .service
        .as_ref()
        .expect("a loaded service has Service properties");
    assert_eq!(
        (svc.service_type.as_str(), svc.result.as_str()),
        ("oneshot", "success")
    );
    assert_eq!((svc.exec_main_code, svc.exec_main_status), (1, 0), "exited 0");
    assert!(svc.exec_main_start_usec > 0 && svc.exec_main_exit_usec >= svc.exec_main_start_usec);
    assert!(!svc.remain_after_exit);

    let st = &all[1];
    assert_eq!(st.active_state, ActiveState::Failed);
    assert_eq!(st.sub_state, "failed");
    let svc = st.service.as_ref().expect("Service properties");
    assert_eq!(svc.result, "exit-code");
    assert_eq!((svc.exec_main_code, svc.exec_main_status), (1, 8), "exited 8");
    assert!(svc.exec_main_exit_usec > 0);

    let st = &all[2];
    assert_eq!(
        (st.active_state.clone(), st.sub_state.as_str()),
        (ActiveState::Active, "exited")
    );
    let svc = st.service.as_ref().expect("Service properties");
    assert!(svc.remain_after_exit && svc.result == "success", "{svc:?}");
}

#[tokio::test]
async fn units_that_never_ran_were_skipped_or_do_not_exist() {
    let units = [
        ("never.service", SUCCEEDS),
        ("skipped.service", SKIPPED),
        ("static.service", STATIC),
    ];
    let sd = start_systemd(&units, &["skipped.service"]);
    assert!(
        systemctl_start(&sd, "skipped.service"),
        "a skipped start is no failure"
    );
    let systemd = connect(&sd).await;
    let (never, skipped) = (unit("never.service"), unit("skipped.service"));
    let missing = unit(&format!("routewarden-missing-{}.service", std::process::id()));
    wait_status(&systemd, &skipped, "its condition checked", |s| {
        s.condition_usec > 0
    })
    .await;

    let asked = [
        never,
        skipped,
        unit("static.service"),
        missing,
        unit("missing.target"),
    ];
    let all = systemd.statuses(&asked).await.expect("statuses");
    assert_eq!(all.len(), asked.len());

    let st = &all[0];
    assert_eq!(
        (st.load_state.as_str(), st.unit_file_state.as_str()),
        ("loaded", "disabled")
    );
    assert_eq!(
        (st.condition_usec, st.inactive_exit_usec),
        (0, 0),
        "never checked, never left inactive"
    );
    let svc = st.service.as_ref().expect("Service properties");
    assert_eq!(
        (
            svc.exec_main_start_usec,
            svc.exec_main_exit_usec,
            svc.exec_main_code
        ),
        (0, 0, 0)
    );

    let st = &all[1];
    assert!(!st.condition_result, "the condition failed: {st:?}");
    assert!(st.condition_usec > 0 && st.inactive_exit_usec == 0, "{st:?}");
    assert_eq!(st.active_state, ActiveState::Inactive);
    assert_eq!(
        st.service.as_ref().map(|s| s.exec_main_start_usec),
        Some(0),
        "never ran"
    );

    assert_eq!(all[2].unit_file_state, "static", "no [Install] section");

    for st in &all[3..] {
        assert_eq!(st.load_state, "not-found", "{st:?}");
        assert_eq!(st.active_state, ActiveState::Inactive);
        assert_eq!(
            st.service, None,
            "no Service properties for a unit that does not exist"
        );
    }
    assert!(systemd.statuses(&[]).await.expect("nothing asked").is_empty());
}

#[tokio::test]
async fn a_long_running_service_is_active() {
    let sd = start_systemd(&[("long.service", LONG_RUNNING)], &[]);
    assert!(systemctl_start(&sd, "long.service"), "long.service starts");
    let systemd = connect(&sd).await;
    let long = unit("long.service");
    let st = wait_status(&systemd, &long, "running", |s| s.sub_state == "running").await;
    assert_eq!(st.active_state, ActiveState::Active);
    let svc = st.service.expect("Service properties");
    assert_eq!(svc.service_type, "simple");
    assert!(
        svc.exec_main_start_usec > 0 && svc.exec_main_exit_usec == 0,
        "{svc:?}"
    );
    assert_eq!(svc.exec_main_code, 0, "not exited");
}

#[tokio::test]
async fn the_watch_sees_units_start_fail_and_get_enabled() {
    let units = [
        ("ok.service", SUCCEEDS),
        ("fail.service", FAILS),
        ("later.service", SUCCEEDS),
    ];
    let sd = start_systemd(&units, &["ok.service"]);
    let systemd = connect(&sd).await;
    let (ok, fail) = (unit("ok.service"), unit("fail.service"));
    let mut watch = systemd.watch(&[ok.clone(), fail.clone()]).await.expect("watch");

    assert!(systemctl_start(&sd, "ok.service"));
    next_event(&mut watch, &UnitEvent::Changed(ok.clone())).await;

    assert!(!systemctl_start(&sd, "fail.service"));
    next_event(&mut watch, &UnitEvent::Changed(fail.clone())).await;
    let st = wait_status(&systemd, &fail, "failed", |s| {
        s.active_state == ActiveState::Failed
    })
    .await;
    assert_eq!(st.service.map(|s| s.exec_main_status), Some(8));

    sd.enable("later.service").expect("enable");
    next_event(&mut watch, &UnitEvent::Reloaded).await;

    // A second watch on the same connection (systemd refuses a second Subscribe).
    let mut again = systemd
        .watch(std::slice::from_ref(&ok))
        .await
        .expect("a second watch");
    assert!(systemctl_start(&sd, "ok.service"));
    next_event(&mut again, &UnitEvent::Changed(ok.clone())).await;
    next_event(&mut watch, &UnitEvent::Changed(ok)).await;
}

#[tokio::test]
async fn the_watch_ends_when_the_bus_dies() {
    let sd = start_systemd(&[("ok.service", SUCCEEDS)], &["ok.service"]);
    let systemd = connect(&sd).await;
    let ok = unit("ok.service");
    let mut watch = systemd.watch(std::slice::from_ref(&ok)).await.expect("watch");
    assert!(!systemd.is_closed());

    sd.kill_bus().expect("the bus killed");
    let drained = tokio::time::timeout(WAIT, async { while watch.next().await.is_some() {} });
    drained.await.expect("the watch ends once the bus is gone");
    assert!(systemd.is_closed());

    let err = systemd
        .statuses(std::slice::from_ref(&ok))
        .await
        .expect_err("no bus");
    assert_eq!(err.kind(), "closed", "{err}");
    assert!(err.to_string().contains(sd.bus_address()), "{err}");
    let err = systemd.watch(&[ok]).await.expect_err("no bus");
    assert_eq!(err.kind(), "closed", "{err}");

    let again = tokio::time::timeout(WAIT, Systemd::connect(Some(sd.bus_address())));
    let err = again
        .await
        .expect("connect gives up by itself")
        .expect_err("dead bus");
    assert_eq!(err.kind(), "connect", "{err}");
    assert!(err.to_string().contains(sd.bus_address()), "{err}");
}

#[tokio::test]
async fn connect_gives_up_on_silent_and_missing_buses() {
    let silent = SilentSocket::new().expect("a silent socket");
    let limit = Duration::from_millis(300);
    let address = silent.address();
    let attempt = Systemd::connect_timeout(Some(&address), limit);
    let err = tokio::time::timeout(WAIT, attempt)
        .await
        .expect("gives up")
        .expect_err("no answer");
    assert_eq!(err.kind(), "timeout", "{err}");
    let text = err.to_string();
    assert!(text.contains(&address) && text.contains("connecting"), "{text}");

    let missing = "unix:path=/nonexistent/routewarden/bus";
    let err = Systemd::connect(Some(missing)).await.expect_err("no socket");
    assert_eq!(err.kind(), "connect", "{err}");
    assert!(err.to_string().contains(missing), "{err}");

    let err = Systemd::connect(Some("not-an-address"))
        .await
        .expect_err("bad address");
    assert_eq!(err.kind(), "connect", "{err}");
    assert!(err.to_string().contains("not-an-address"), "{err}");
}

#[tokio::test]
async fn the_watch_survives_a_daemon_reexec() {
    let sd = start_systemd(&[("ok.service", SUCCEEDS)], &["ok.service"]);
    let systemd = connect(&sd).await;
    let ok = unit("ok.service");
    let mut watch = systemd.watch(std::slice::from_ref(&ok)).await.expect("watch");

    // systemd re-executes, reconnects to the bus and keeps its subscribers.
    sd.systemctl_ok(&["daemon-reexec"]).expect("daemon-reexec");
    next_event(&mut watch, &UnitEvent::Reloaded).await;
    assert!(!systemd.is_closed());

    assert!(systemctl_start(&sd, "ok.service"));
    let changed = UnitEvent::Changed(ok.clone());
    let found = tokio::time::timeout(WAIT, async {
        while let Some(batch) = watch.next_batch().await {
            let once = batch.iter().enumerate().all(|(i, e)| !batch[..i].contains(e));
            assert!(once, "each event once per batch: {batch:?}");
            if batch.contains(&changed) {
                return true;
            }
        }
        false
    });
    assert!(
        found.await.expect("signals after the reexec"),
        "the watch goes on"
    );
    let st = wait_status(&systemd, &ok, "ran", |s| {
        s.service.as_ref().is_some_and(|s| s.exec_main_exit_usec > 0)
    })
    .await;
    assert_eq!(st.service.map(|s| s.result), Some("success".to_owned()));
}

#[tokio::test]
async fn an_alias_is_read_and_watched_through_its_unit() {
    let real = "[Service]\nType=oneshot\nExecStart=/bin/true\n\n[Install]\nWantedBy=default.target\nAlias=routewarden-alias.service\n";
    let sd = start_systemd(&[("real.service", real)], &["real.service"]);
    let systemd = connect(&sd).await;
    let alias = unit("routewarden-alias.service");
    let mut watch = systemd.watch(std::slice::from_ref(&alias)).await.expect("watch");

    assert!(systemctl_start(&sd, "real.service"));
    next_event(&mut watch, &UnitEvent::Changed(alias.clone())).await;
    let st = wait_status(&systemd, &alias, "ran", |s| {
        s.service.as_ref().is_some_and(|s| s.exec_main_code == 1)
    })
    .await;
    assert_eq!(st.name, alias, "reported under the name asked for");
    assert_eq!(st.load_state, "loaded");
}
