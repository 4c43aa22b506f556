//! Remediation's record: the daemon writes it after each attempt (a small JSON
//! file, `--remediation-state`, replaced atomically); `check` run beside it (in
//! the agent's pod) reads it back to show the last attempt per route.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::decide::{decide, owner_of, Context, Decision};
use crate::compare::{DriftReport, RouteState};
use crate::model::{Attempt, NmView, RouteRemediation};

/// Where the daemon keeps its record by default (the agent's own `/run`, not
/// the host's: an `emptyDir` in the remediation component).
pub const DEFAULT_PATH: &str = "/run/routewarden/remediation.json";

/// What the daemon knows of each owner.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerRecord {
    /// The last attempt.
    #[serde(default)]
    pub last_attempt: Option<Attempt>,
    /// When it may be acted on next (RFC 3339).
    #[serde(default)]
    pub next_attempt_at: Option<String>,
    /// Given up on until the intent changes.
    #[serde(default)]
    pub gave_up: bool,
}

/// The whole record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// `--remediate` of the daemon that wrote it.
    pub mode: String,
    /// When (RFC 3339).
    pub written_at: String,
    /// By owner.
    #[serde(default)]
    pub owners: BTreeMap<String, OwnerRecord>,
}

/// The record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading failed.
    #[error("cannot read the remediation record {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// Not the daemon's JSON.
    #[error("the remediation record {path} is not valid: {source}")]
    Parse {
        /// The file.
        path: String,
        /// Where and why.
        source: serde_json::Error,
    },
}

impl StateError {
    /// A static kind for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            StateError::Read { .. } => "read",
            StateError::Parse { .. } => "parse",
        }
    }
}

/// Replace the record at `path` (a temporary file beside it, then a rename),
/// making its directory when missing.
pub fn write(path: &Path, record: &Record) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_vec_pretty(record).map_err(io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// The record at `path`; None when there is none (no daemon with remediation
/// ran here).
pub fn read(path: &Path) -> Result<Option<Record>, StateError> {
    let shown = path.display().to_string();
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(StateError::Read { path: shown, source }),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| StateError::Parse { path: shown, source })
}

/// For `check`: what would be done about each route that is not present, with
/// the daemon's last attempt on its owner when a record is there.
pub fn annotate(report: &mut DriftReport, view: Option<&NmView>, record: Option<&Record>) {
    let decisions: Vec<Option<RouteRemediation>> = {
        let ctx = Context {
            sources: &report.sources,
            units: &report.units,
            view,
        };
        report
            .routes
            .iter()
            .map(|v| (v.state != RouteState::Present).then(|| shown(v, ctx, view, record)))
            .collect()
    };
    for (v, remediation) in report.routes.iter_mut().zip(decisions) {
        v.remediation = remediation;
    }
}

fn shown(
    v: &crate::compare::RouteVerdict,
    ctx: Context<'_>,
    view: Option<&NmView>,
    record: Option<&Record>,
) -> RouteRemediation {
    let (action, owner, why) = match decide(v, ctx) {
        Decision::Act(a, why) => (Some(a.kind), Some(a.owner), why),
        Decision::Hold(why) => (None, owner_of(&v.expected, view), why),
    };
    let known = owner
        .as_ref()
        .and_then(|o| record.and_then(|r| r.owners.get(o)))
        .cloned()
        .unwrap_or_default();
    RouteRemediation {
        action: action.filter(|_| !known.gave_up),
        owner,
        why,
        next_attempt_at: known.next_attempt_at,
        last_attempt: known.last_attempt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ActionKind, AttemptResult};

    fn record() -> Record {
        let attempt = Attempt {
            action: ActionKind::RestartUnit,
            owner: "nmcli-dev-modify.service".into(),
            result: AttemptResult::Failed,
            at: "2026-11-30T10:00:00Z".into(),
            error: Some("RestartUnit of nmcli-dev-modify.service was refused".into()),
        };
        let owner = OwnerRecord {
            last_attempt: Some(attempt),
            next_attempt_at: Some("2026-11-30T10:02:00Z".into()),
            gave_up: false,
        };
        Record {
            mode: "on".into(),
            written_at: "2026-11-30T10:00:00Z".into(),
            owners: [("nmcli-dev-modify.service".to_owned(), owner)]
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn written_then_read_back() {
        let dir = std::env::temp_dir().join(format!("rw-state-{}", std::process::id()));
        let path = dir.join("sub").join("remediation.json");
        write(&path, &record()).expect("write");
        assert_eq!(read(&path).expect("read"), Some(record()));
        assert_eq!(read(&dir.join("none.json")).expect("absent"), None);
        std::fs::write(&path, b"{\"mode\": 3}").expect("write");
        let err = read(&path).expect_err("not a record");
        assert_eq!(err.kind(), "parse");
        assert!(err.to_string().contains(&path.display().to_string()), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
