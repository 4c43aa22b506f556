//! Daemon: the view of the kernel's policy-routing rules, kept current by
//! reading them again when a rule notification (or an overrun, or the periodic
//! resync) says they may have changed.
//!
//! A notification re-reads rather than applying the change: the rule table is
//! small (tens of rules: one request, a datagram or two, well under a
//! millisecond), and the dump gives the kernel's own order and every attribute,
//! which applying changes one by one would have to replicate.

use crate::compare::SourceState;
use crate::model::ObservedRule;
use crate::observe::routes;

/// The rules as last read, and why the last read failed while it does.
#[derive(Debug, Default)]
pub(super) struct RuleView {
    /// Every IPv4 and IPv6 rule, in the kernel's order.
    pub(super) rules: Vec<ObservedRule>,
    error: Option<String>,
}

impl RuleView {
    /// Read every rule again; true when the rules, or whether they could be
    /// read, changed. A failed read keeps the last rules.
    pub(super) async fn refresh(&mut self) -> bool {
        let read = match tokio::task::spawn_blocking(routes::dump_rules).await {
            Ok(read) => read.map_err(|e| {
                tracing::debug!(error = %e, kind = e.kind(), "reading the routing rules failed");
                e.to_string()
            }),
            Err(e) => Err(format!("rule dump task: {e}")),
        };
        let before = self.error.take();
        match read {
            Ok(rules) => {
                let changed = rules != self.rules || before.is_some();
                self.rules = rules;
                changed
            }
            Err(why) => {
                self.error = Some(why);
                before != self.error
            }
        }
    }

    /// The netlink source: as the route dump left it, down while the rules
    /// cannot be read.
    pub(super) fn netlink(&self, routes: &SourceState) -> SourceState {
        match (routes, &self.error) {
            (SourceState::Up, Some(why)) => SourceState::Down(why.clone()),
            (state, _) => state.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_that_cannot_be_read_take_the_netlink_source_down() {
        let mut view = RuleView::default();
        assert_eq!(view.netlink(&SourceState::Up), SourceState::Up);
        view.error = Some("cannot receive RTM_GETRULE dump".into());
        assert_eq!(
            view.netlink(&SourceState::Up),
            SourceState::Down("cannot receive RTM_GETRULE dump".into())
        );
        let routes_down = SourceState::Down("route dump".into());
        assert_eq!(
            view.netlink(&routes_down),
            routes_down,
            "the route dump's reason first"
        );
    }
}
