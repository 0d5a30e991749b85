//! The root supervisor: starts the provider actors and the router, restarts one that panics
//! (at most `max_restarts` within `restart_window`; past that a provider is reported failed and
//! left out of routing), owns the links of running races, and shuts everything down in order.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::SupervisionConfig;
use crate::events::{EventBus, HealthEvent};
use crate::provider::{ProviderActor, ProviderArgs, View};
use crate::router::{RouterActor, RouterArgs, RouterMsg};

/// Messages of the supervisor.
pub(crate) enum SupervisorMsg {
    /// Kill the races still running, stop the router, then the providers; reply when done.
    Shutdown { reply: RpcReplyPort<()> },
}

pub(crate) struct SupervisorArgs {
    pub(crate) providers: Vec<ProviderArgs>,
    pub(crate) router: RouterArgs,
    pub(crate) slot: watch::Sender<Option<ActorRef<RouterMsg>>>,
    pub(crate) policy: SupervisionConfig,
    pub(crate) events: EventBus,
}

struct Child<A> {
    args: A,
    actor: Option<ActorCell>,
    restarts: VecDeque<Instant>,
}

impl<A> Child<A> {
    fn new(args: A, actor: ActorCell) -> Self {
        Self {
            args,
            actor: Some(actor),
            restarts: VecDeque::new(),
        }
    }

    fn is(&self, cell: &ActorCell) -> bool {
        self.actor
            .as_ref()
            .is_some_and(|a| a.get_id() == cell.get_id())
    }

    /// Whether one more restart stays within the intensity limit (and counts it if so).
    fn may_restart(&mut self, policy: &SupervisionConfig, now: Instant) -> bool {
        while self
            .restarts
            .front()
            .is_some_and(|&t| now.duration_since(t) > policy.restart_window)
        {
            self.restarts.pop_front();
        }
        if self.restarts.len() >= policy.max_restarts as usize {
            return false;
        }
        self.restarts.push_back(now);
        true
    }
}

pub(crate) struct SupervisorState {
    providers: Vec<Child<ProviderArgs>>,
    router: Child<RouterArgs>,
    slot: watch::Sender<Option<ActorRef<RouterMsg>>>,
    policy: SupervisionConfig,
    events: EventBus,
    stopping: bool,
}

pub(crate) struct SupervisorActor;

impl Actor for SupervisorActor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: SupervisorArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let mut providers = Vec::with_capacity(args.providers.len());
        let router_args = args.router;
        for provider_args in args.providers {
            let (actor, _) = Actor::spawn_linked(
                None,
                ProviderActor,
                provider_args.clone(),
                myself.get_cell(),
            )
            .await?;
            providers.push(Child::new(provider_args, actor.get_cell()));
        }
        let (router, _) =
            Actor::spawn_linked(None, RouterActor, router_args.clone(), myself.get_cell()).await?;
        args.slot.send_replace(Some(router.clone()));
        Ok(SupervisorState {
            providers,
            router: Child::new(router_args, router.get_cell()),
            slot: args.slot,
            policy: args.policy,
            events: args.events,
            stopping: false,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupervisorMsg::Shutdown { reply } => {
                state.shut_down(&myself).await;
                let _ = reply.send(());
                myself.stop(Some("shutdown".to_owned()));
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if state.stopping {
            return Ok(());
        }
        let (cell, why) = match &event {
            SupervisionEvent::ActorFailed(cell, error) => (cell, error.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, reason.clone().unwrap_or_else(|| "stopped".to_owned()))
            }
            _ => return Ok(()),
        };
        if let Some(index) = state.providers.iter().position(|p| p.is(cell)) {
            state.restart_provider(&myself, index, why).await;
        } else if state.router.is(cell) {
            state.restart_router(&myself, why).await?;
        }
        // Anything else is a race ending: nothing to do.
        Ok(())
    }
}

impl SupervisorState {
    async fn restart_provider(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        index: usize,
        why: String,
    ) {
        let child = &mut self.providers[index];
        child.actor = None;
        let provider = child.args.provider.clone();
        // What the crashed actor last published: the state it crashed in.
        let from = child.args.view.borrow().state;
        tracing::error!(provider = provider.name(), error = %why, "provider actor crashed");
        let restarted = if child.may_restart(&self.policy, Instant::now()) {
            Actor::spawn_linked(None, ProviderActor, child.args.clone(), myself.get_cell())
                .await
                .ok()
        } else {
            None
        };
        let reason = match restarted {
            Some((actor, _)) => {
                child.actor = Some(actor.get_cell());
                format!("actor restarted after a crash: {why}")
            }
            None => {
                // The actor is gone for good: the view's one writer is now the supervisor.
                child.args.view.send_modify(View::fail);
                format!(
                    "actor crashed more than {} times within {}; left out of routing: {why}",
                    self.policy.max_restarts,
                    humantime_serde::re::humantime::format_duration(self.policy.restart_window)
                )
            }
        };
        let to = child.args.view.borrow().state;
        self.events.publish(HealthEvent {
            provider,
            from,
            to,
            reason,
            at: SystemTime::now(),
        });
    }

    async fn restart_router(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        why: String,
    ) -> Result<(), ActorProcessingErr> {
        tracing::error!(error = %why, "router actor crashed");
        self.router.actor = None;
        if !self.router.may_restart(&self.policy, Instant::now()) {
            // Without a router nothing can be routed: give up, handles report the runtime stopped.
            self.close_table();
            return Err(format!("router crashed too often: {why}").into());
        }
        let (router, _) = Actor::spawn_linked(
            None,
            RouterActor,
            self.router.args.clone(),
            myself.get_cell(),
        )
        .await?;
        self.router.actor = Some(router.get_cell());
        self.slot.send_replace(Some(router));
        Ok(())
    }

    /// Routes nothing more: no router, the table closed. The router is gone (or going), so
    /// the supervisor is the table's one writer now.
    fn close_table(&self) {
        self.slot.send_replace(None);
        self.router
            .args
            .table
            .send_modify(|table| *table = Arc::new(table.closed()));
    }

    /// Kills running races, then stops the router and the providers, each waited for.
    async fn shut_down(&mut self, myself: &ActorRef<SupervisorMsg>) {
        self.stopping = true;
        let wait = Some(Duration::from_secs(5));
        let router = self.router.actor.take();
        let providers: Vec<ActorCell> = self
            .providers
            .iter_mut()
            .filter_map(|p| p.actor.take())
            .collect();
        for child in myself.get_children() {
            let is_named = router
                .as_ref()
                .is_some_and(|r| r.get_id() == child.get_id())
                || providers.iter().any(|p| p.get_id() == child.get_id());
            if !is_named {
                child.kill();
            }
        }
        self.close_table();
        if let Some(router) = router {
            let _ = router.stop_and_wait(None, wait).await;
        }
        for provider in providers {
            let _ = provider.stop_and_wait(None, wait).await;
        }
    }
}
