//! Daemon: the view of the kernel's policy-routing rules, kept current by
//! reading them again when a rule notification says they may have changed, and
//! with every full re-read of the routing table (an overrun, the periodic
//! resync), in the same blocking task and so paced like it.
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
    /// Reads made for notifications: a full re-read that began before the
    /// last of them may hold older rules than it read.
    notified_reads: u64,
}

/// Read every rule (blocking: call it from `spawn_blocking`); the error as the
/// source's reason.
pub(super) fn read() -> Result<Vec<ObservedRule>, String> {
    routes::dump_rules().map_err(|e| {
        tracing::debug!(error = %e, kind = e.kind(), "reading the routing rules failed");
        e.to_string()
    })
}

impl RuleView {
    /// Read every rule again, for a notification; true when the rules, or
    /// whether they could be read, changed. A failed read keeps the last rules.
    pub(super) async fn refresh(&mut self) -> bool {
        self.notified_reads += 1;
        let read = match tokio::task::spawn_blocking(read).await {
            Ok(read) => read,
            Err(e) => Err(format!("rule dump task: {e}")),
        };
        self.set(read)
    }

    /// What a full re-read starting now hands back to [`RuleView::reread`].
    pub(super) fn mark(&self) -> u64 {
        self.notified_reads
    }

    /// The rules a full re-read begun at `mark` read; dropped when a
    /// notification had them read again meanwhile (that read is the newer).
    /// True when they changed, as for [`RuleView::refresh`].
    pub(super) fn reread(&mut self, mark: u64, read: Result<Vec<ObservedRule>, String>) -> bool {
        mark == self.notified_reads && self.set(read)
    }

    fn set(&mut self, read: Result<Vec<ObservedRule>, String>) -> bool {
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

    #[test]
    fn a_full_reread_older_than_a_notified_read_is_dropped() {
        let mut view = RuleView::default();
        let mark = view.mark();
        assert!(view.reread(mark, Err("cannot receive RTM_GETRULE dump".into())));
        assert_eq!(
            view.netlink(&SourceState::Up),
            SourceState::Down("cannot receive RTM_GETRULE dump".into())
        );
        assert!(view.reread(mark, Ok(Vec::new())), "readable again");
        let mark = view.mark();
        view.notified_reads += 1; // a notification read the rules meanwhile
        assert!(!view.reread(mark, Err("stale".into())));
        assert_eq!(
            view.netlink(&SourceState::Up),
            SourceState::Up,
            "the newer read stands"
        );
    }
}
