//! A one-shot timer that sends a message to an actor and is cancelled when dropped, so that no
//! sleeping task outlives the actor that asked for it (even one that was killed).

use ractor::{ActorRef, Message};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Sends a message at a deadline unless dropped first.
#[derive(Debug)]
pub(crate) struct Timer(JoinHandle<()>);

impl Timer {
    pub(crate) fn at<M, F>(deadline: Instant, actor: ActorRef<M>, message: F) -> Self
    where
        M: Message,
        F: FnOnce() -> M + Send + 'static,
    {
        Timer(tokio::spawn(async move {
            tokio::time::sleep_until(deadline).await;
            // The actor may be gone already; then nobody needs the message.
            let _ = actor.cast(message());
        }))
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.0.abort();
    }
}
