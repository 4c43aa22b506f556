//! Compare stage: an expected unit + what systemd reports -> its state
//! (`ok`, `failed`, `not-run`, `inactive`, `disabled`, `not-found`, `unknown`).

use serde::Serialize;

use crate::model::{ActiveState, Expect, ExpectedUnit, UnitName, UnitStatus};

use super::UnitsSeen;

/// Unit verdict (the contract's states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnitState {
    /// Did what it should.
    Ok,
    /// Result or ActiveState failed.
    Failed,
    /// A oneshot that did not run this boot (or a condition skipped it).
    NotRun,
    /// A service that should be active is not.
    Inactive,
    /// The config enables it but it is disabled or masked.
    Disabled,
    /// systemd does not know it.
    NotFound,
    /// systemd could not be asked.
    Unknown,
    /// systemd was not asked (`--no-units`).
    Skipped,
}

impl UnitState {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            UnitState::Ok => "ok",
            UnitState::Failed => "failed",
            UnitState::NotRun => "not-run",
            UnitState::Inactive => "inactive",
            UnitState::Disabled => "disabled",
            UnitState::NotFound => "not-found",
            UnitState::Unknown => "unknown",
            UnitState::Skipped => "skipped",
        }
    }

    /// Whether systemd told the state (not unknown, not skipped): only these
    /// count as drift and have series.
    pub fn is_known(self) -> bool {
        !matches!(self, UnitState::Unknown | UnitState::Skipped)
    }
}

/// The verdict on one expected unit, with the properties that led to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitVerdict {
    /// Name.
    pub name: UnitName,
    /// Verdict.
    pub state: UnitState,
    /// What the intent expects.
    pub expect: Expect,
    /// Whether the config enables it.
    pub enabled: Option<bool>,
    /// LoadState.
    pub load_state: Option<String>,
    /// ActiveState.
    pub active_state: Option<ActiveState>,
    /// SubState.
    pub sub_state: Option<String>,
    /// Result (services).
    pub result: Option<String>,
    /// ExecMainStatus (services that ran).
    pub exec_main_status: Option<i32>,
    /// UnitFileState.
    pub unit_file_state: Option<String>,
    /// Why the state is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown_reason: Option<String>,
    /// The full status, for explanations.
    #[serde(skip)]
    pub status: Option<UnitStatus>,
}

/// Judge one unit.
pub fn verdict(expected: &ExpectedUnit, seen: &UnitsSeen) -> UnitVerdict {
    let mut v = UnitVerdict {
        name: expected.name.clone(),
        state: UnitState::Unknown,
        expect: expected.expect,
        enabled: expected.enabled,
        load_state: None,
        active_state: None,
        sub_state: None,
        result: None,
        exec_main_status: None,
        unit_file_state: None,
        unknown_reason: None,
        status: None,
    };
    let status = match seen {
        UnitsSeen::Seen(all) => all.iter().find(|s| s.name == expected.name),
        UnitsSeen::Unavailable(why) => {
            v.unknown_reason = Some(why.clone());
            None
        }
        UnitsSeen::Skipped => {
            v.state = UnitState::Skipped;
            v.unknown_reason = Some("unit checks skipped (--no-units)".into());
            None
        }
    };
    let Some(status) = status else { return v };
    v.state = state(expected, status);
    v.load_state = Some(status.load_state.clone());
    v.active_state = Some(status.active_state.clone());
    v.sub_state = Some(status.sub_state.clone());
    v.unit_file_state = Some(status.unit_file_state.clone());
    v.result = status.service.as_ref().map(|s| s.result.clone());
    v.exec_main_status = status
        .service
        .as_ref()
        .filter(|s| s.exec_main_code != 0)
        .map(|s| s.exec_main_status);
    v.status = Some(status.clone());
    v
}

fn state(expected: &ExpectedUnit, s: &UnitStatus) -> UnitState {
    if s.load_state == "not-found" {
        return UnitState::NotFound;
    }
    if s.load_state == "masked" || s.unit_file_state.starts_with("masked") {
        return UnitState::Disabled;
    }
    let result_failed = s
        .service
        .as_ref()
        .is_some_and(|svc| !svc.result.is_empty() && svc.result != "success");
    if s.active_state == ActiveState::Failed || result_failed {
        return UnitState::Failed;
    }
    if expected.enabled == Some(true) && s.unit_file_state == "disabled" {
        return UnitState::Disabled;
    }
    match expected.expect {
        Expect::Succeeded => succeeded(s),
        Expect::Active if matches!(s.active_state, ActiveState::Active | ActiveState::Reloading) => {
            UnitState::Ok
        }
        Expect::Active => UnitState::Inactive,
    }
}

fn succeeded(s: &UnitStatus) -> UnitState {
    if !s.condition_result && s.condition_usec > 0 {
        return UnitState::NotRun;
    }
    match &s.service {
        Some(svc)
            if svc.exec_main_exit_usec > 0
                || (svc.exec_main_start_usec > 0 && s.active_state == ActiveState::Active) =>
        {
            UnitState::Ok
        }
        Some(_) => UnitState::NotRun,
        None if s.active_state == ActiveState::Active => UnitState::Ok,
        None => UnitState::Inactive,
    }
}

/// "exit status 8", "killed by signal 9" for a service that ran.
pub fn exit_text(s: &UnitStatus) -> Option<String> {
    let svc = s.service.as_ref()?;
    let text = match svc.exec_main_code {
        1 => format!("exit status {}", svc.exec_main_status),
        2 | 3 => format!("killed by signal {}", svc.exec_main_status),
        _ => match svc.result.as_str() {
            "" | "success" => return None,
            r => format!("result {r}"),
        },
    };
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ServiceStatus;

    fn unit(expect: Expect, enabled: Option<bool>) -> ExpectedUnit {
        ExpectedUnit {
            name: UnitName::new("r.service").expect("name"),
            enabled,
            expect,
        }
    }

    fn status(active: &str, file: &str, svc: ServiceStatus) -> UnitStatus {
        UnitStatus {
            name: UnitName::new("r.service").expect("name"),
            load_state: "loaded".into(),
            active_state: ActiveState::parse(active),
            sub_state: "dead".into(),
            unit_file_state: file.into(),
            condition_result: true,
            condition_usec: 1,
            inactive_exit_usec: 0,
            service: Some(svc),
        }
    }

    fn ran(result: &str, code: i32, st: i32) -> ServiceStatus {
        ServiceStatus {
            service_type: "oneshot".into(),
            result: result.into(),
            exec_main_status: st,
            exec_main_code: code,
            exec_main_start_usec: 10,
            exec_main_exit_usec: 20,
            remain_after_exit: false,
            commands: Vec::new(),
        }
    }

    fn judge(u: &ExpectedUnit, s: UnitStatus) -> UnitState {
        verdict(u, &UnitsSeen::Seen(vec![s])).state
    }

    #[test]
    fn oneshot_states() {
        let u = unit(Expect::Succeeded, Some(true));
        assert_eq!(
            judge(&u, status("inactive", "enabled", ran("success", 1, 0))),
            UnitState::Ok
        );
        let failed = status("failed", "enabled", ran("exit-code", 1, 8));
        assert_eq!(exit_text(&failed).as_deref(), Some("exit status 8"));
        assert_eq!(judge(&u, failed), UnitState::Failed);
        assert_eq!(
            judge(&u, status("inactive", "enabled", ServiceStatus::default())),
            UnitState::NotRun
        );
        assert_eq!(
            judge(&u, status("inactive", "disabled", ServiceStatus::default())),
            UnitState::Disabled
        );
        let mut skipped = status("inactive", "enabled", ServiceStatus::default());
        skipped.condition_result = false;
        assert_eq!(judge(&u, skipped), UnitState::NotRun);
        let mut missing = status("inactive", "", ServiceStatus::default());
        missing.load_state = "not-found".into();
        assert_eq!(judge(&u, missing), UnitState::NotFound);
    }

    #[test]
    fn service_states_and_unknown() {
        let u = unit(Expect::Active, None);
        assert_eq!(
            judge(&u, status("active", "enabled", ran("success", 0, 0))),
            UnitState::Ok
        );
        assert_eq!(
            judge(&u, status("inactive", "enabled", ran("success", 1, 0))),
            UnitState::Inactive
        );
        let v = verdict(&u, &UnitsSeen::Unavailable("no bus".into()));
        assert_eq!(
            (v.state, v.unknown_reason.as_deref()),
            (UnitState::Unknown, Some("no bus"))
        );
    }
}
