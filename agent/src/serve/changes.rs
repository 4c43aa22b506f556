//! Daemon: what changed between two views, in pure functions: the links that
//! flipped, the events worth replaying after a dump (the drift worth a log line
//! is `report_log.rs`).

use std::collections::HashSet;

use crate::model::{Link, RouteKey};
use crate::observe::routes::Event;

/// Events worth replaying on top of a dump: wanted routes, and next-hop
/// objects (which wanted routes may use).
pub(super) fn keeps(event: &Event, wanted: &HashSet<RouteKey>) -> bool {
    match event {
        Event::RouteAdded { route, .. } | Event::RouteRemoved(route) => wanted.contains(&route.key),
        Event::Nexthop { .. } => true,
        _ => false,
    }
}

pub(super) struct Flips {
    pub(super) down: Vec<u32>,
    pub(super) any: bool,
}

/// Links that went down or away, and whether any link's state flipped.
pub(super) fn link_flips(before: Option<&[Link]>, after: Option<&[Link]>) -> Flips {
    let (Some(before), Some(after)) = (before, after) else {
        return Flips {
            down: Vec::new(),
            any: true,
        };
    };
    let mut flips = Flips {
        down: Vec::new(),
        any: false,
    };
    for old in before {
        match after.iter().find(|l| l.index == old.index) {
            None => {
                flips.down.push(old.index);
                flips.any = true;
            }
            Some(new) if new.up != old.up || new.carrier != old.carrier => {
                if !new.up {
                    flips.down.push(new.index);
                }
                flips.any = true;
            }
            _ => {}
        }
    }
    flips.any |= after.len() != before.len();
    flips
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::IfName;

    fn link(index: u32, up: bool) -> Link {
        Link::new(index, IfName::new(&format!("eth{index}")).expect("name"), up, up)
    }

    #[test]
    fn flips() {
        let before = [link(1, true), link(2, true)];
        let f = link_flips(Some(&before), Some(&[link(1, true), link(2, false)]));
        assert_eq!((f.down, f.any), (vec![2], true));
        let f = link_flips(Some(&before), Some(&[link(1, true)]));
        assert_eq!((f.down, f.any), (vec![2], true), "a removed link");
        let f = link_flips(Some(&before), Some(&before));
        assert_eq!(
            (f.down, f.any),
            (vec![], false),
            "an attribute change that is not a flip"
        );
        let f = link_flips(Some(&before[..1]), Some(&before));
        assert!(f.any && f.down.is_empty(), "a new link");
        assert!(link_flips(None, Some(&before)).any, "links unknown before");
    }
}
