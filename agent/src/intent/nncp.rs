//! Intent stage: network states given as documents, NodeNetworkConfigurationPolicies
//! (kubernetes-nmstate: `spec.desiredState`, applied through NetworkManager on
//! the nodes their `nodeSelector` picks) and plain nmstate documents: their
//! `routes.config` and `route-rules.config`, read as nmstate files are.
//!
//! A value that refers to a `capture` (`"{{ capture.gw.routes... }}"`) is only
//! known on the node when the policy is applied: that entry is a diagnostic, not
//! a route.

use serde_json::Value;

use crate::model::{Manager, Source, SourceKind};

use super::build::Builder;
use super::document::NetworkState;
use super::spec::traits;
use super::{nmstate, nmstate_rules};

impl Builder<'_> {
    pub(super) fn read_states(&mut self) {
        for state in std::mem::take(&mut self.merged.states) {
            if state.selects(self.options.node_labels.as_ref()) {
                self.read_state(state);
            }
        }
    }

    fn read_state(&mut self, mut state: NetworkState) {
        let at = state.origin();
        let kind = match state.policy {
            Some(_) => SourceKind::Nncp,
            None => SourceKind::Nmstate,
        };
        for (list, i) in captured(&mut state.state) {
            self.error(
                format!("{at} {list}.config[{i}]"),
                "refers to a capture ({{ capture... }}): its value is known only when the policy is applied on the node; not read",
            );
        }
        let text = state.state.to_string();
        let found = nmstate::parse(&text);
        for (place, problem) in found.problems {
            self.error(format!("{at}{place}"), problem);
        }
        for (place, spec) in found.routes {
            let source = Source {
                kind,
                origin: format!("{at}{place}"),
                unit: None,
            };
            self.add_route(spec, source, traits(Manager::NetworkManager, false));
        }
        self.add_state_rules(
            &at,
            nmstate_rules::parse(&text),
            (kind, Manager::NetworkManager),
            None,
        );
    }
}

/// Entries of `routes.config` and `route-rules.config` that refer to a capture,
/// each replaced by `state: absent` so it is not read; their list and index.
fn captured(state: &mut Value) -> Vec<(&'static str, usize)> {
    let mut found = Vec::new();
    for list in ["routes", "route-rules"] {
        let Some(entries) = state
            .pointer_mut(&format!("/{list}/config"))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for (i, entry) in entries.iter_mut().enumerate() {
            if refers_to_capture(entry) {
                *entry = serde_json::json!({ "state": "absent" });
                found.push((list, i));
            }
        }
    }
    found
}

fn refers_to_capture(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains("{{"),
        Value::Array(items) => items.iter().any(refers_to_capture),
        Value::Object(map) => map.values().any(refers_to_capture),
        _ => false,
    }
}
