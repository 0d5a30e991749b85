//! Behaviour of the runtime, driven through its public API with a scripted fake upstream and
//! paused tokio time.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail the test"
)]

mod health;
mod hedge;
mod load;
mod models;
mod race;
mod recovery;
mod routing;
mod supervision;

use std::sync::Arc;
use std::time::Duration;

use relayrace_actors::testing::{FakeUpstream, Step};
use relayrace_actors::{
    HealthEvent, HealthEvents, HealthState, ProviderSettings, RouterHandle, Runtime, RuntimeConfig,
};

pub(crate) const MS: Duration = Duration::from_millis(1);
pub(crate) const SECOND: Duration = Duration::from_secs(1);

/// Providers named `names`, priorities 1, 2, 3... in that order.
pub(crate) fn config(names: &[&str]) -> RuntimeConfig {
    let mut config = RuntimeConfig::with_providers(
        names
            .iter()
            .enumerate()
            .map(|(i, name)| ProviderSettings::new(*name).priority(i as u32 + 1)),
    );
    config.routing.seed = Some(7);
    config
}

/// A running runtime over a shared fake.
pub(crate) struct Harness {
    pub(crate) runtime: Runtime<Arc<FakeUpstream>>,
    pub(crate) fake: Arc<FakeUpstream>,
    pub(crate) events: HealthEvents,
}

impl Harness {
    pub(crate) async fn start(config: RuntimeConfig, fake: FakeUpstream) -> Self {
        let fake = Arc::new(fake);
        let runtime = Runtime::start(config, fake.clone()).await.unwrap();
        let events = runtime.subscribe();
        Harness {
            runtime,
            fake,
            events,
        }
    }

    pub(crate) fn handle(&self) -> RouterHandle<Arc<FakeUpstream>> {
        self.runtime.handle()
    }

    /// Routes a request and returns the winner's name.
    pub(crate) async fn route_ok(&self) -> String {
        let routed = self.handle().route("req".to_owned()).await.unwrap();
        routed.response.provider
    }

    pub(crate) async fn select(&self) -> String {
        self.handle().select().await.unwrap().name().to_owned()
    }

    /// The next health event, as (provider, from, to).
    pub(crate) async fn next_event(&mut self) -> (String, HealthState, HealthState) {
        let event: HealthEvent = tokio::time::timeout(600 * SECOND, self.events.recv())
            .await
            .expect("no health event within ten minutes")
            .unwrap();
        (event.provider.name().to_owned(), event.from, event.to)
    }

    pub(crate) async fn shutdown(self) {
        self.runtime.shutdown(SECOND).await;
    }
}

/// Providers all succeed unless scripted.
pub(crate) fn fake() -> FakeUpstream {
    FakeUpstream::new().otherwise(Step::ok())
}
