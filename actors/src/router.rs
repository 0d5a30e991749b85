//! The router actor: owns the routing table (published whole for requests to read) and the
//! strategy's rotation state. Under `failover` requests need no decision and never message it;
//! under the other strategies it picks each primary. It reads every provider's health from the
//! provider's own view, decides and hands out; it never awaits upstream I/O.

pub(crate) mod eligibility;
pub mod strategy;
pub(crate) mod table;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::watch;

use crate::config::StrategyKind;
use crate::provider::{Seat, Target, ViewCopy};
use crate::report::RouteError;
use crate::upstream::Provider;
use eligibility::Eligibility;
use strategy::{Candidate, Strategy};
use table::{Table, TableSender};

/// Models whose rotation state is kept apart; past this many, further models share one.
const MAX_MODEL_ROTATIONS: usize = 256;

/// How long a request waits for a crashed router's successor.
const ROUTER_RESTART_WAIT: Duration = Duration::from_secs(1);

/// Messages of the router actor.
pub(crate) enum RouterMsg {
    /// The strategy's pick among providers in rotation that serve `model`; admits nothing.
    Select {
        model: Option<Arc<str>>,
        reply: RpcReplyPort<Result<Provider, RouteError>>,
    },
    /// The primary of a new request for `model`, admitted (a half-open pick takes a probe
    /// slot).
    Admit {
        model: Option<Arc<str>>,
        reply: RpcReplyPort<Result<Target, RouteError>>,
    },
    /// Shutdown began: publish the table closed.
    Close { reply: RpcReplyPort<()> },
    /// Panics, to exercise supervision.
    #[cfg(any(test, feature = "test-util"))]
    Crash,
}

/// Everything the router (re)starts from.
#[derive(Clone)]
pub(crate) struct RouterArgs {
    pub(crate) seats: Vec<Seat>,
    pub(crate) strategy: StrategyKind,
    pub(crate) seed: u64,
    pub(crate) table: TableSender,
    pub(crate) eligibility: Arc<Eligibility>,
}

pub(crate) struct RouterState {
    table: Arc<Table>,
    /// Each seat's view, in configured order.
    views: Vec<ViewCopy>,
    publish: TableSender,
    /// The rotation of requests without a model (and of models past the cap).
    strategy: Strategy,
    /// Each model's own rotation, so one model's traffic does not skew another's.
    by_model: HashMap<Arc<str>, Strategy>,
    kind: StrategyKind,
    seed: u64,
    candidates: Vec<Candidate>,
}

pub(crate) struct RouterActor;

impl Actor for RouterActor {
    type Msg = RouterMsg;
    type State = RouterState;
    type Arguments = RouterArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: RouterArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let table = Arc::new(Table::new(args.seats, args.strategy, args.eligibility));
        args.table.send_replace(table.clone());
        Ok(RouterState {
            candidates: Vec::with_capacity(table.seats().len()),
            views: table.seats().iter().map(ViewCopy::of).collect(),
            table,
            publish: args.table,
            strategy: Strategy::new(args.strategy, args.seed),
            by_model: HashMap::new(),
            kind: args.strategy,
            seed: args.seed,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            RouterMsg::Select { model, reply } => {
                let picked = state.pick(model.as_ref()).map(|seat| seat.provider.clone());
                let _ = reply.send(picked);
            }
            RouterMsg::Admit { model, reply } => {
                let _ = reply.send(state.admit(model.as_ref()));
            }
            RouterMsg::Close { reply } => {
                state.table = Arc::new(state.table.closed());
                state.publish.send_replace(state.table.clone());
                let _ = reply.send(());
            }
            #[cfg(any(test, feature = "test-util"))]
            RouterMsg::Crash => panic!("router crashed on request"),
        }
        Ok(())
    }
}

impl RouterState {
    /// The strategy's pick among providers in rotation that serve `model`.
    fn pick(&mut self, model: Option<&Arc<str>>) -> Result<&Seat, RouteError> {
        self.table.check_open()?;
        let mut candidates = std::mem::take(&mut self.candidates);
        candidates.clear();
        for (index, (seat, view)) in self.table.seats().iter().zip(&mut self.views).enumerate() {
            let serves = model.is_none_or(|model| self.table.serves(index, model));
            if serves && seat.has_room() && view.in_rotation() {
                candidates.push(Candidate {
                    id: seat.provider.id(),
                    priority: seat.priority,
                    weight: seat.weight,
                });
            }
        }
        let picked = self.rotation(model).pick(&candidates);
        self.candidates = candidates;
        let Some(id) = picked else {
            // None to pick: a model nobody enabled serves is an error of its own.
            self.table.eligible(model.map(|m| &**m))?;
            return Err(RouteError::AllUnhealthy);
        };
        Ok(&self.table.seats()[id.index()])
    }

    /// The rotation state of `model`'s requests.
    fn rotation(&mut self, model: Option<&Arc<str>>) -> &mut Strategy {
        let Some(model) = model else {
            return &mut self.strategy;
        };
        if !self.by_model.contains_key(model) && self.by_model.len() >= MAX_MODEL_ROTATIONS {
            return &mut self.strategy;
        }
        let (kind, seed) = (self.kind, self.seed ^ (self.by_model.len() as u64 + 1));
        self.by_model
            .entry(model.clone())
            .or_insert_with(|| Strategy::new(kind, seed))
    }

    /// The strategy's pick, admitted. A half-open pick whose last probe slot was just taken by
    /// a racer is not in rotation any more: pick again.
    fn admit(&mut self, model: Option<&Arc<str>>) -> Result<Target, RouteError> {
        for _ in 0..=self.table.seats().len() {
            if let Some(target) = self.pick(model)?.admit() {
                return Ok(target);
            }
        }
        Err(RouteError::AllUnhealthy)
    }
}

/// Where the current router lives; replaced when the supervisor restarts it.
pub(crate) type RouterSlot = watch::Receiver<Option<ActorRef<RouterMsg>>>;

/// Asks the router; if it died (the supervisor is restarting it), waits briefly for its
/// successor and asks once more.
pub(crate) async fn ask<T: Send + 'static>(
    slot: &RouterSlot,
    message: impl Fn(RpcReplyPort<T>) -> RouterMsg,
) -> Result<T, RouteError> {
    let mut slot = slot.clone();
    let router = slot
        .borrow_and_update()
        .clone()
        .ok_or(RouteError::Stopped)?;
    match call(&router, &message).await {
        Err(RouteError::Stopped) => {
            let restarted = tokio::time::timeout(ROUTER_RESTART_WAIT, slot.changed()).await;
            if !matches!(restarted, Ok(Ok(()))) {
                return Err(RouteError::Stopped);
            }
            let router = slot.borrow().clone().ok_or(RouteError::Stopped)?;
            call(&router, message).await
        }
        answered => answered,
    }
}

/// Calls an actor; a messaging failure means the runtime is going away.
pub(crate) async fn call<M: ractor::Message, T: Send + 'static>(
    actor: &ActorRef<M>,
    message: impl FnOnce(RpcReplyPort<T>) -> M,
) -> Result<T, RouteError> {
    match actor.call(message, None).await {
        Ok(CallResult::Success(value)) => Ok(value),
        _ => Err(RouteError::Stopped),
    }
}
