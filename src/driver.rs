//! One contract between the procedure and both worlds, and the one loop over it.
//!
//! A [`Driver`] reads the cluster (`observe`), carries out an action (`act`) and lets time pass
//! (`wait`); a [`Recorder`] keeps what happened (the rehearsal's timeline, the live run's
//! journal). [`step`] is one turn of the loop — observe, let the procedure choose, record, act —
//! and [`run`] turns it until the procedure ends. The simulator (`crate::rehearsal`) and the
//! live cluster (`crate::live::executor`) both implement `Driver`, so the order of reads,
//! choices, records and actions is written once.
//!
//! The trait is async because the live driver waits on the network and on processes; the
//! simulator's futures never wait on anything (every call runs the world forward in place and
//! returns), so [`ready`] runs them to completion with a single poll, with no runtime and no
//! cost per step beyond the call itself.

use crate::procedure::{Action, ActionResult, Observation, Procedure, Reads};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// Where the procedure is when the loop asks the driver for something.
pub struct StepCtx<'a> {
    /// Index of the action in the run (0-based).
    pub step: usize,
    /// The action (before the procedure has chosen one, reads `Observe`).
    pub action: &'a Action,
    /// Servers of the current batch (being upgraded).
    pub batch: &'a [String],
    /// Servers already upgraded.
    pub upgraded: &'a [String],
    /// Whether the procedure is rolling back (a `ReplaceBinary` then installs the current
    /// version again).
    pub rolling_back: bool,
}

/// The action the context of an observation names: none has been chosen yet.
const NOT_CHOSEN: Action = Action::Observe { wait_ms: 0 };

/// A world the procedure runs against: the simulator or a real cluster.
// Plain `async fn`: the loop awaits these on its own task, so no `Send` bound is needed.
#[allow(async_fn_in_trait)]
pub trait Driver {
    /// Why the driver could not go on (the simulator: never).
    type Error;
    /// Reads the cluster; `result` is the previous action's, carried to the procedure.
    async fn observe(
        &mut self,
        ctx: &StepCtx<'_>,
        reads: Reads,
        result: ActionResult,
    ) -> Result<Observation, Self::Error>;
    /// Carries out an action that changes something (never `Observe`, `Done` or `Halt`).
    async fn act(
        &mut self,
        ctx: &StepCtx<'_>,
        action: &Action,
    ) -> Result<ActionResult, Self::Error>;
    /// Lets `wait_ms` pass before the next observation (`Observe`).
    async fn wait(&mut self, ctx: &StepCtx<'_>, wait_ms: u64) -> Result<(), Self::Error>;
    /// Milliseconds on the driver's clock, the clock of its observations' `now_ms`.
    fn now_ms(&self) -> u64;
}

/// Keeps what the loop did.
pub trait Recorder {
    /// Why a record could not be kept (the rehearsal's timeline: never).
    type Error;
    /// An observation, before the procedure reads it.
    fn observed(&mut self, obs: &Observation) -> Result<(), Self::Error>;
    /// The procedure's choice at `at_ms` (its state is already past the choice), before it is
    /// carried out; final actions (`Done`, `Halt`) too.
    fn chose(&mut self, at_ms: u64, proc: &Procedure, action: &Action) -> Result<(), Self::Error>;
    /// The result of an action that changed something (not of `Observe`).
    fn acted(&mut self, at_ms: u64, result: &ActionResult) -> Result<(), Self::Error>;
}

/// What stopped the loop: the driver or the recorder.
#[derive(Debug, thiserror::Error)]
pub enum LoopError<D, R> {
    /// The driver could not observe or act.
    #[error("{0}")]
    Driver(D),
    /// The recorder could not keep a record.
    #[error("{0}")]
    Record(R),
}

/// One turn of the loop.
#[derive(Debug, Clone, PartialEq)]
pub enum Turn {
    /// The procedure goes on; the next observation carries this result.
    Next(ActionResult),
    /// The procedure ended with this action (`Done` or `Halt`).
    Ended(Action),
}

/// One turn: observe, let the procedure choose, record, then act or wait. `step` is the index
/// of the action about to be chosen.
pub async fn step<D: Driver, R: Recorder>(
    driver: &mut D,
    proc: &mut Procedure,
    recorder: &mut R,
    step: usize,
    result: ActionResult,
) -> Result<Turn, LoopError<D::Error, R::Error>> {
    let pre = StepCtx {
        step,
        action: &NOT_CHOSEN,
        batch: proc.step_servers(),
        upgraded: proc.upgraded(),
        rolling_back: proc.is_rolling_back(),
    };
    let obs = driver
        .observe(&pre, proc.reads(), result)
        .await
        .map_err(LoopError::Driver)?;
    recorder.observed(&obs).map_err(LoopError::Record)?;
    let action = proc.next(&obs);
    recorder
        .chose(driver.now_ms(), proc, &action)
        .map_err(LoopError::Record)?;
    if action.is_final() {
        return Ok(Turn::Ended(action));
    }
    let ctx = StepCtx {
        step,
        action: &action,
        batch: proc.step_servers(),
        upgraded: proc.upgraded(),
        rolling_back: proc.is_rolling_back(),
    };
    if let Action::Observe { wait_ms } = action {
        driver
            .wait(&ctx, wait_ms)
            .await
            .map_err(LoopError::Driver)?;
        return Ok(Turn::Next(ActionResult::None));
    }
    let result = driver.act(&ctx, &action).await.map_err(LoopError::Driver)?;
    recorder
        .acted(driver.now_ms(), &result)
        .map_err(LoopError::Record)?;
    Ok(Turn::Next(result))
}

/// Turns the loop until the procedure ends, starting from `step` with `result` (0 and
/// `ActionResult::None` for a fresh run); returns the final action. The procedure bounds the
/// loop: past `OBSERVATIONS_MAX` observations it halts.
pub async fn run<D: Driver, R: Recorder>(
    driver: &mut D,
    proc: &mut Procedure,
    recorder: &mut R,
    mut index: usize,
    mut result: ActionResult,
) -> Result<Action, LoopError<D::Error, R::Error>> {
    loop {
        match step(driver, proc, recorder, index, result).await? {
            Turn::Next(r) => result = r,
            Turn::Ended(a) => return Ok(a),
        }
        index += 1;
    }
}

/// Runs a future that never waits (the simulator's) to completion with one poll.
///
/// # Panics
/// If the future is pending: a driver whose futures can wait must run on an executor.
pub fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        // The simulator's driver awaits nothing that can be pending: every call computes its
        // answer in place. A pending future here is a programming error, not an input.
        Poll::Pending => panic!("a driver future passed to `ready` waited"),
    }
}
