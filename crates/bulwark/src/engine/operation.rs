//! What the engine's loop (`Run::try_targets`) asks of the operation it
//! runs: chat ([`super::chat`]), with its streams, hedges and translations,
//! or a unary call ([`super::unary`]), one JSON answer. The loop itself
//! (the plan, breakers, the failure table, retries and their budget, the
//! deadline) is the same for both.

use std::time::Duration;

use crate::route::{Target, Ticket};

use super::hedge::{Attempted, LostRace};
use super::plan::Plan;
use super::{Run, Served};

pub(super) trait Operation {
    type Answer;

    /// Passes over, before any call, every target that cannot take the
    /// request: no breaker, quota, slot or retry is spent on it.
    fn refuse_targets(&self, run: &mut Run<'_>, plan: &mut Plan);

    /// One attempt on target `primary`, with its breaker `ticket`; `hedge`
    /// is the target a slow attempt may race, if the route hedges.
    /// `may_wait`: no other target is left, so a full one's slot is waited
    /// for.
    async fn attempt(
        &self,
        run: &mut Run<'_>,
        primary: usize,
        ticket: Ticket,
        hedge: Option<usize>,
        may_wait: bool,
    ) -> (Attempted<Self::Answer>, Option<LostRace>);

    /// Books a success on target `index` and hands the answer over.
    fn serve(
        &self,
        run: &mut Run<'_>,
        index: usize,
        ticket: Ticket,
        answer: Self::Answer,
        first_token: Duration,
        plan: &Plan,
    ) -> Served<Self::Answer>;

    /// Whether `target` is sent a translation of the client's request,
    /// or serves the API on a cloud with limits of its own (Bedrock's
    /// allowed betas, a region's models): either way its 4xx may say the
    /// target cannot take a request the client's own API would, so
    /// another target is tried (see `resilience::classify`).
    fn translated_for(&self, target: &Target) -> bool;
}
