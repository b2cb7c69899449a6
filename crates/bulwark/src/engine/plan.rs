//! The order a request tries its route's targets in, and what is left of
//! it as attempts are made: which targets were used, and, after a prompt
//! was too long for one, which are large enough to take it.

use tokio::time::Instant;

use crate::route::{Route, Target};

pub(super) struct Plan {
    /// Target indices, in the order they are tried.
    order: Vec<usize>,
    /// Targets already tried (or hedged to), by index.
    used: Vec<bool>,
    /// After a too-long prompt, only targets with a larger window qualify.
    context_floor: Option<u64>,
}

impl Plan {
    pub(super) fn new(route: &Route) -> Plan {
        Plan {
            order: route.plan(),
            used: vec![false; route.targets.len()],
            context_floor: None,
        }
    }

    /// The target tried first: an answer from any other is a fallback.
    pub(super) fn first(&self) -> Option<usize> {
        self.order.first().copied()
    }

    /// The target at `position` of the order, unless it was used already.
    pub(super) fn candidate(&self, position: usize) -> Option<usize> {
        self.order
            .get(position)
            .copied()
            .filter(|&index| !self.used[index])
    }

    pub(super) fn len(&self) -> usize {
        self.order.len()
    }

    pub(super) fn mark_used(&mut self, index: usize) {
        if let Some(used) = self.used.get_mut(index) {
            *used = true;
        }
    }

    /// Whether `target` can take a prompt that was too long for a window of
    /// `context_floor` tokens.
    pub(super) fn fits(&self, target: &Target) -> bool {
        self.context_floor
            .is_none_or(|floor| target.context_window.is_some_and(|w| w > floor))
    }

    /// A prompt was too long for a target with a window of `window` tokens.
    pub(super) fn raise_context_floor(&mut self, window: u64) {
        self.context_floor = Some(self.context_floor.map_or(window, |f| f.max(window)));
    }

    /// Unused targets after `position` that could take the request, in order.
    pub(super) fn later<'r>(
        &'r self,
        route: &'r Route,
        position: usize,
    ) -> impl Iterator<Item = usize> + 'r {
        self.order
            .iter()
            .skip(position + 1)
            .copied()
            .filter(move |&index| !self.used[index] && self.fits(&route.targets[index]))
    }

    /// The next target a hedge could go to, if the route hedges.
    pub(super) fn hedge_target(&self, route: &Route, position: usize) -> Option<usize> {
        route.policy.hedge_after?;
        self.later(route, position).next()
    }

    /// Whether no later target could take the request: then, and only then,
    /// an attempt waits for a full target's concurrency slot.
    pub(super) fn nothing_else_left(&self, route: &Route, position: usize) -> bool {
        let now = Instant::now();
        self.later(route, position).all(|index| {
            route.targets[index]
                .state
                .with_breaker(|b| b.admit_preview(now))
                .is_some()
        })
    }

    /// Targets a broken stream may continue on: every one after `served` in
    /// the order that was not tried.
    pub(super) fn untried_after(&self, served: usize) -> Vec<usize> {
        let position = self
            .order
            .iter()
            .position(|&index| index == served)
            .unwrap_or(self.order.len());
        self.order
            .iter()
            .skip(position + 1)
            .copied()
            .filter(|&index| !self.used[index])
            .collect()
    }
}
