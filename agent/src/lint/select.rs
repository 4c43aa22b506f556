//! `lint`: what is linted together. The MachineConfigs as written of one pool
//! are merged as the MCO merges them; a rendered MachineConfig (the MCO names it
//! `rendered-POOL-HASH` and gives it no role label) is already its pool's merge,
//! so it is linted on its own: merged with others, it would replace what they
//! wrote (and `oc get mc -o yaml` lists every pool's). Network states apply when
//! their `nodeSelector` matches the node's labels and names no other host.

use std::collections::BTreeMap;

use crate::intent::document::{Config, NetworkState};
use crate::intent::Options;

/// The label Kubernetes gives every node: its name.
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// Configs linted together.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Group {
    /// The pool (None: a config without a role label that is not rendered).
    pub pool: Option<String>,
    /// The rendered MachineConfig's name, when the group is one.
    pub rendered: Option<String>,
}

impl Group {
    /// The group of a config: its rendered MachineConfig, else its role's.
    pub fn of(config: &Config) -> Group {
        let rendered = config.name.as_deref().and_then(rendered_pool);
        match rendered {
            Some(pool) => Group {
                pool: Some(pool.to_owned()),
                rendered: config.name.clone(),
            },
            None => Group {
                pool: config.role.clone(),
                rendered: None,
            },
        }
    }

    /// How the report lists it: `worker`, `worker (rendered-worker-HASH)`, `-`.
    pub fn label(&self) -> String {
        let pool = self.pool.as_deref().unwrap_or("-");
        match &self.rendered {
            Some(name) => format!("{pool} ({name})"),
            None => pool.to_owned(),
        }
    }
}

/// The pool of a rendered MachineConfig's name `rendered-POOL-HASH` (HASH in
/// hex); None for any other name.
fn rendered_pool(name: &str) -> Option<&str> {
    let (pool, hash) = name.strip_prefix("rendered-")?.rsplit_once('-')?;
    let hex = !hash.is_empty() && hash.chars().all(|c| c.is_ascii_hexdigit());
    (hex && !pool.is_empty()).then_some(pool)
}

/// The intent's options (the node name joins the labels given as its
/// [`HOSTNAME_LABEL`]) and the node's host name (None: unknown).
pub fn node_options(
    labels: Option<BTreeMap<String, String>>,
    node_name: Option<String>,
) -> (Options, Option<String>) {
    let node_labels = labels.map(|mut l| {
        if let Some(name) = &node_name {
            l.entry(HOSTNAME_LABEL.to_owned()).or_insert_with(|| name.clone());
        }
        l
    });
    let hostname = match &node_labels {
        Some(l) => l.get(HOSTNAME_LABEL).cloned(),
        None => node_name.clone(),
    };
    let options = Options {
        node_name,
        node_labels,
    };
    (options, hostname)
}

/// Whether a network state may apply on the host `hostname` (unknown: any):
/// false when its `nodeSelector` names another [`HOSTNAME_LABEL`].
pub fn names_host(state: &NetworkState, hostname: Option<&str>) -> bool {
    let named = state.node_selector.as_ref().and_then(|s| s.get(HOSTNAME_LABEL));
    match (named, hostname) {
        (Some(named), Some(host)) => named == host,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::rendered_pool;

    #[test]
    fn rendered_names_give_their_pool() {
        let hash = "5f1b0c2d9e8a7b6c5d4e3f2a1b0c9d8e";
        assert_eq!(rendered_pool(&format!("rendered-worker-{hash}")), Some("worker"));
        assert_eq!(
            rendered_pool(&format!("rendered-infra-gpu-{hash}")),
            Some("infra-gpu")
        );
        for other in [
            "99-worker-routes",
            "rendered-worker",
            "rendered--abc",
            "rendered-worker-xyz",
        ] {
            assert_eq!(rendered_pool(other), None, "{other}");
        }
    }
}
