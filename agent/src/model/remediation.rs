//! Remediation as the reports show it: what routewarden does (or would do, or
//! will not do, and why) about an expected route that is not present, and what
//! it last did. Deciding and acting live in `remediate`; these are the words.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An action on a route's owner. Never a route or a file written directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    /// systemd `RestartUnit` (mode `replace`) of the unit that declares the route.
    RestartUnit,
    /// NetworkManager `Device.Reapply` of the device's applied connection.
    Reapply,
    /// NetworkManager `ActivateConnection` of an autoconnect profile on its device.
    Activate,
}

impl ActionKind {
    /// Every action, in label order.
    pub const ALL: [ActionKind; 3] = [ActionKind::RestartUnit, ActionKind::Reapply, ActionKind::Activate];

    /// Label value (the `action` label of `routewarden_remediations_total`).
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::RestartUnit => "restart-unit",
            ActionKind::Reapply => "reapply",
            ActionKind::Activate => "activate",
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttemptResult {
    /// The owner did it: the unit's job finished `done`, NetworkManager accepted.
    Success,
    /// The call or the unit's job failed (a permission error included).
    Failed,
    /// `--remediate dry-run`: decided, logged and counted, not done.
    DryRun,
    /// The unit was restarted three times in a row without its route coming
    /// back: it is left alone until the intent changes.
    GaveUp,
}

impl AttemptResult {
    /// Label value (the `result` label of `routewarden_remediations_total`).
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptResult::Success => "success",
            AttemptResult::Failed => "failed",
            AttemptResult::DryRun => "dry-run",
            AttemptResult::GaveUp => "gave-up",
        }
    }
}

impl fmt::Display for AttemptResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One attempt on an owner, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// What was done.
    pub action: ActionKind,
    /// On whom: a unit name, or `connection/<id>`.
    pub owner: String,
    /// How it ended.
    pub result: AttemptResult,
    /// When it ended (RFC 3339).
    pub at: String,
    /// The owner's answer when it failed (systemd's, NetworkManager's, the bus's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What is done about one route that is not present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteRemediation {
    /// The action that puts it back, or null when none does (a person must).
    pub action: Option<ActionKind>,
    /// Whom the action is on (null with no action).
    pub owner: Option<String>,
    /// In plain words: the action and why, or why there is none.
    pub why: String,
    /// When the owner may next be acted on (RFC 3339), while it waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    /// The last attempt on the owner, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt: Option<Attempt>,
}
