//! What a provider actor publishes about itself, and admission read from it.
//!
//! The actor owns its state and its probe slots; it publishes a [`View`] on a `watch` channel
//! after every change. The router and the request path read the view without a message: a
//! [`Seat`] is one provider as routing sees it, and [`Seat::admit`] hands out a [`Target`] for
//! one attempt. A half-open provider admits an attempt only with a probe permit; the actor makes
//! the permits when it enters half-open and closes them when it leaves, and a permit frees its
//! slot when the attempt holding it ends (however it ends).

use std::sync::Arc;

use ractor::ActorRef;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use super::message::ProviderMsg;
use super::standing::Standing;
use crate::hedge::ProviderHedge;
use crate::state::HealthState;
use crate::upstream::Provider;

/// A provider as its actor last published it.
#[derive(Clone, Debug)]
pub(crate) struct View {
    /// Where it stands in routing.
    pub(crate) state: HealthState,
    /// Its actor; `None` once the supervisor gave up on it.
    pub(crate) actor: Option<ActorRef<ProviderMsg>>,
    /// Its probe slots, while half-open.
    pub(crate) probes: Option<Arc<Semaphore>>,
    /// How many probes it admits at once while half-open.
    pub(crate) probe_limit: u32,
}

impl View {
    /// Before its actor first starts.
    pub(crate) fn starting(probe_limit: u32) -> Self {
        View {
            state: HealthState::Healthy,
            actor: None,
            probes: None,
            probe_limit,
        }
    }

    /// The supervisor gave up on its actor: out of routing for good.
    pub(crate) fn fail(&mut self) {
        self.state = HealthState::Failed;
        self.actor = None;
        self.probes = None;
    }

    /// Probes in flight right now.
    pub(crate) fn probes_in_flight(&self) -> u32 {
        self.probes.as_ref().map_or(0, |slots| {
            let free = u32::try_from(slots.available_permits()).unwrap_or(u32::MAX);
            self.probe_limit.saturating_sub(free)
        })
    }

    fn in_rotation(&self) -> bool {
        self.actor.is_some()
            && match self.state {
                HealthState::Healthy => true,
                HealthState::HalfOpen => self
                    .probes
                    .as_ref()
                    .is_some_and(|slots| slots.available_permits() > 0),
                _ => false,
            }
    }
}

/// The publishing end of a provider's view, kept across restarts of its actor.
pub(crate) type ViewSender = Arc<watch::Sender<View>>;

/// One provider as routing sees it: fixed settings and the live view of its actor.
#[derive(Clone, Debug)]
pub(crate) struct Seat {
    pub(crate) provider: Provider,
    pub(crate) priority: u32,
    pub(crate) weight: u32,
    pub(crate) view: watch::Receiver<View>,
    pub(crate) standing: Standing,
    /// Its hedge settings and learned delays.
    pub(crate) hedge: Arc<ProviderHedge>,
    /// Its slots for attempts in flight, when they are bounded.
    pub(crate) slots: Option<Arc<Semaphore>>,
}

impl Seat {
    /// Whether it would admit an attempt now (admits nothing).
    pub(crate) fn in_rotation(&self) -> bool {
        self.has_room() && self.view.borrow().in_rotation()
    }

    /// Whether it has room for one more attempt (always, when unbounded).
    pub(crate) fn has_room(&self) -> bool {
        self.slots
            .as_ref()
            .is_none_or(|slots| slots.available_permits() > 0)
    }

    /// Admits one attempt: a healthy provider at once, a half-open one if a probe slot is free.
    pub(crate) fn admit(&self) -> Option<Target> {
        let view = self.view.borrow();
        let actor = view.actor.clone()?;
        let probe = match view.state {
            HealthState::Healthy => None,
            HealthState::HalfOpen => Some(view.probes.clone()?.try_acquire_owned().ok()?),
            _ => return None,
        };
        let slot = match &self.slots {
            Some(slots) => Some(slots.clone().try_acquire_owned().ok()?),
            None => None,
        };
        Some(Target {
            provider: self.provider.clone(),
            actor,
            standing: self.standing.clone(),
            hedge: self.hedge.clone(),
            probe,
            _slot: slot,
        })
    }

    /// Its actor, when it has one.
    pub(crate) fn actor(&self) -> Option<ActorRef<ProviderMsg>> {
        self.view.borrow().actor.clone()
    }
}

/// A reader's copy of a provider's view, refreshed only when the actor has republished it: a
/// version check per read instead of a lock. For the router, which reads every provider on
/// each pick.
pub(crate) struct ViewCopy {
    view: watch::Receiver<View>,
    copy: View,
}

impl ViewCopy {
    pub(crate) fn of(seat: &Seat) -> Self {
        let mut view = seat.view.clone();
        let copy = view.borrow_and_update().clone();
        ViewCopy { view, copy }
    }

    /// Whether the provider would admit an attempt now, as of its latest view.
    pub(crate) fn in_rotation(&mut self) -> bool {
        // A view whose sender is gone (shutdown) keeps its last value.
        if self.view.has_changed().unwrap_or(false) {
            self.copy = self.view.borrow_and_update().clone();
        }
        self.copy.in_rotation()
    }
}

/// A provider admitted for one attempt, with the actor its outcome goes to. Holds its probe
/// permit, if it took one, until it is dropped.
pub(crate) struct Target {
    pub(crate) provider: Provider,
    pub(crate) actor: ActorRef<ProviderMsg>,
    pub(crate) standing: Standing,
    pub(crate) hedge: Arc<ProviderHedge>,
    probe: Option<OwnedSemaphorePermit>,
    /// Its place under the provider's bound on attempts in flight, if any.
    _slot: Option<OwnedSemaphorePermit>,
}

impl Target {
    /// Whether this attempt is a probe of a half-open provider.
    pub(crate) fn is_probe(&self) -> bool {
        self.probe.is_some()
    }
}
