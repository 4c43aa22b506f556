//! Intent stage, declaration form: nmstate files under `/etc/nmstate/`
//! (`routes.config[]`: destination, next-hop-address, next-hop-interface, metric,
//! table-id; `state: absent` entries remove routes and are not expected).
//!
//! Which files apply: nmstate.service applies `/etc/nmstate/*.yml`; on OpenShift
//! `/etc/nmstate/openshift/cluster.yml` applies to every node and
//! `/etc/nmstate/openshift/<short-hostname>.yml` only to that host. Any other file
//! there (`.yaml`, a fully qualified name) is never applied.

use serde::Deserialize;

use crate::model::IfName;

use super::spec::{self, FileRoutes, Place, RouteSpec};

/// Top of the nmstate tree.
pub const DIR: &str = "/etc/nmstate/";
const OPENSHIFT_DIR: &str = "/etc/nmstate/openshift/";

/// Whether a file under /etc/nmstate/ is applied on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applies {
    /// Yes.
    Yes,
    /// Not applied; the message says why (a warning when it looks meant to be).
    No(Option<String>),
    /// Not an nmstate path.
    NotNmstate,
}

/// Decide whether `path` is applied on the node called `short_host`.
pub fn applies(path: &str, short_host: Option<&str>) -> Applies {
    if let Some(name) = path.strip_prefix(OPENSHIFT_DIR) {
        return openshift_file(name, short_host);
    }
    match path.strip_prefix(DIR) {
        Some(name) if !name.contains('/') && name.ends_with(".yml") => Applies::Yes,
        Some(name) if !name.contains('/') && name.ends_with(".yaml") => Applies::No(Some(
            "nmstate.service applies only files named *.yml; this .yaml file is never applied".into(),
        )),
        Some(_) => Applies::No(None),
        None => Applies::NotNmstate,
    }
}

fn openshift_file(name: &str, short_host: Option<&str>) -> Applies {
    let stem = name.strip_suffix(".yml");
    match (stem, short_host) {
        (Some("cluster"), _) => Applies::Yes,
        (Some(host), Some(me)) if host == me => Applies::Yes,
        (Some(host), _) if host.contains('.') => Applies::No(Some(format!(
            "only /etc/nmstate/openshift/cluster.yml and <short-hostname>.yml are applied; {host:?} looks like a fully qualified name, which never matches"
        ))),
        (Some(_), _) => Applies::No(None),
        (None, _) => Applies::No(Some(
            "only /etc/nmstate/openshift/cluster.yml and <short-hostname>.yml are applied; this file name is never applied".into(),
        )),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct State {
    routes: Option<Routes>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Routes {
    config: Option<Vec<Route>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
struct Route {
    destination: Option<String>,
    next_hop_address: Option<String>,
    next_hop_interface: Option<String>,
    metric: Option<i64>,
    table_id: Option<u32>,
    state: Option<String>,
    route_type: Option<String>,
}

/// Parse an nmstate file's routes.
pub fn parse(text: &str) -> FileRoutes {
    let mut out = FileRoutes::default();
    let state: State = match serde_norway::from_str(text) {
        Ok(s) => s,
        Err(e) => {
            let place = e
                .location()
                .map(|l| Place::Line(l.line()))
                .unwrap_or(Place::Whole);
            let what = e.to_string();
            let what = what
                .split(" at line ")
                .next()
                .unwrap_or("")
                .split(':')
                .next()
                .unwrap_or("");
            out.problems
                .push((place, format!("not a valid nmstate YAML file ({what})")));
            return out;
        }
    };
    let routes = state.routes.and_then(|r| r.config).unwrap_or_default();
    for (i, r) in routes.iter().enumerate() {
        let place = Place::Path(format!("routes.config[{i}]"));
        match route(r) {
            Ok(Some(spec)) => out.routes.push((place, spec)),
            Ok(None) => {}
            Err(e) => out.problems.push((place, e)),
        }
    }
    out
}

fn route(r: &Route) -> Result<Option<RouteSpec>, String> {
    if r.state.as_deref() == Some("absent") {
        return Ok(None);
    }
    if let Some(t) = r.route_type.as_deref().filter(|t| *t != "unicast") {
        return Err(format!(
            "route-type {} is not a unicast route; not checked",
            spec::shown(t)
        ));
    }
    let dest = r.destination.as_deref().ok_or("has no destination")?;
    let mut spec = RouteSpec::to(spec::destination(dest, None)?);
    spec.gateway = r
        .next_hop_address
        .as_deref()
        .map(spec::gateway)
        .transpose()?
        .flatten();
    spec.device = r
        .next_hop_interface
        .as_deref()
        .map(IfName::new)
        .transpose()
        .map_err(|e| e.to_string())?;
    spec.metric = match r.metric {
        None | Some(-1) => None,
        Some(m) => Some(u32::try_from(m).map_err(|_| "metric is out of range".to_owned())?),
    };
    spec.table = r.table_id.filter(|t| *t != 0);
    spec.check_families()?;
    Ok(Some(spec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_config() {
        let text = "interfaces: []\nroutes:\n  config:\n  - destination: 198.51.100.0/24\n    next-hop-address: 192.0.2.1\n    next-hop-interface: eth1\n    metric: 150\n    table-id: 254\n  - destination: 203.0.113.0/24\n    state: absent\n  - destination: 2001:db8::/64\n    next-hop-interface: eth1\n    table-id: 200\n  - destination: 10.0.0.0/40\n";
        let f = parse(text);
        let got: Vec<_> = f
            .routes
            .iter()
            .map(|(_, r)| (r.destination.to_string(), r.table, r.metric))
            .collect();
        assert_eq!(
            got,
            vec![
                ("198.51.100.0/24".into(), Some(254), Some(150)),
                ("2001:db8::/64".into(), Some(200), None)
            ]
        );
        assert_eq!(f.problems.len(), 1);
        assert_eq!(f.problems[0].0, Place::Path("routes.config[3]".into()));
    }

    #[test]
    fn bad_yaml_is_a_problem() {
        let f = parse("routes: [\n");
        assert_eq!(f.routes.len(), 0);
        assert_eq!(f.problems.len(), 1);
    }

    #[test]
    fn which_files_apply() {
        assert_eq!(applies("/etc/nmstate/ens5.yml", None), Applies::Yes);
        assert!(matches!(
            applies("/etc/nmstate/ens5.yaml", None),
            Applies::No(Some(_))
        ));
        assert_eq!(applies("/etc/nmstate/openshift/cluster.yml", None), Applies::Yes);
        assert_eq!(
            applies("/etc/nmstate/openshift/worker-0.yml", Some("worker-0")),
            Applies::Yes
        );
        assert_eq!(
            applies("/etc/nmstate/openshift/worker-1.yml", Some("worker-0")),
            Applies::No(None)
        );
        assert!(matches!(
            applies(
                "/etc/nmstate/openshift/worker-0.example.com.yml",
                Some("worker-0")
            ),
            Applies::No(Some(_))
        ));
        assert!(matches!(
            applies("/etc/nmstate/openshift/cluster.yaml", None),
            Applies::No(Some(_))
        ));
        assert_eq!(applies("/etc/hosts", None), Applies::NotNmstate);
    }
}
