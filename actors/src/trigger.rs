//! Failover triggers, and the one judgement of an attempt error: does it fail over, and what
//! does it do to the provider's health.

use std::sync::Arc;
use std::time::Duration;

use crate::config::RoutingConfig;
use crate::upstream::AttemptError;

/// Decides whether an attempt error starts a failover race. Embedders can add their own.
pub trait Trigger: Send + Sync + 'static {
    /// True when `error` should fail over.
    fn matches(&self, error: &AttemptError) -> bool;
}

/// Fails over on any of these status codes.
#[derive(Clone, Debug)]
pub struct StatusTrigger(pub Vec<u16>);

impl Trigger for StatusTrigger {
    fn matches(&self, error: &AttemptError) -> bool {
        error
            .status_code()
            .is_some_and(|status| self.0.contains(&status))
    }
}

/// Fails over on attempt timeouts.
#[derive(Clone, Copy, Debug)]
pub struct TimeoutTrigger;

impl Trigger for TimeoutTrigger {
    fn matches(&self, error: &AttemptError) -> bool {
        matches!(error, AttemptError::Timeout { .. })
    }
}

/// Fails over on connection errors.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionTrigger;

impl Trigger for ConnectionTrigger {
    fn matches(&self, error: &AttemptError) -> bool {
        matches!(error, AttemptError::Connection { .. })
    }
}

/// Fails over when a provider refused the embedder's own credential or account
/// ([`AttemptError::Rejected`]): another provider's key may well be fine.
#[derive(Clone, Copy, Debug)]
pub struct RejectedTrigger;

impl Trigger for RejectedTrigger {
    fn matches(&self, error: &AttemptError) -> bool {
        matches!(error, AttemptError::Rejected { .. })
    }
}

/// Fails over when a provider does not serve the request's model
/// ([`AttemptError::NotServed`]): the next provider that serves it is tried.
#[derive(Clone, Copy, Debug)]
pub struct NotServedTrigger;

impl Trigger for NotServedTrigger {
    fn matches(&self, error: &AttemptError) -> bool {
        matches!(error, AttemptError::NotServed { .. })
    }
}

/// What an attempt's outcome does to its provider's health.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HealthEffect {
    /// A success: resets the consecutive-failure count, closes a half-open provider.
    Success,
    /// A failure: counts toward the consecutive-failure threshold. The text says why.
    Failure(String),
    /// Out of rotation for this long (a 429 with `retry-after`), not counted as a failure.
    Cooldown(Duration),
    /// Out of rotation as `rejected` at once: the provider refused the embedder's credential or
    /// account. The text says why.
    Reject(String),
    /// Says nothing about the provider (a client error such as 400, or a cancelled attempt).
    Neutral,
}

/// The judgement of one attempt error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the error starts a failover race.
    pub failover: bool,
    /// Whether the same provider may race again for this request. Not after a timeout (a
    /// silent provider would only hold a connection open again), a rate limit or an overload
    /// (429, 503, 529: it asked for less traffic; asking again at once is the burst it refused)
    /// nor a refused credential. After 500, 502 and 504 it may: those are often one-offs.
    pub retry_same: bool,
    /// What the error does to the provider's health.
    pub health: HealthEffect,
}

/// The set of triggers in force; judges every attempt error once.
#[derive(Clone)]
pub struct Triggers(Arc<[Arc<dyn Trigger>]>);

impl Triggers {
    /// The triggers a routing config asks for.
    pub fn from_config(routing: &RoutingConfig) -> Self {
        let mut triggers: Vec<Arc<dyn Trigger>> =
            vec![Arc::new(StatusTrigger(routing.trigger_statuses.clone()))];
        if routing.trigger_on_timeout {
            triggers.push(Arc::new(TimeoutTrigger));
        }
        if routing.trigger_on_connection_error {
            triggers.push(Arc::new(ConnectionTrigger));
        }
        if routing.trigger_on_rejected {
            triggers.push(Arc::new(RejectedTrigger));
        }
        if routing.trigger_on_unserved_model {
            triggers.push(Arc::new(NotServedTrigger));
        }
        Triggers(triggers.into())
    }

    /// These triggers plus `extra`.
    #[must_use]
    pub fn with(self, extra: Arc<dyn Trigger>) -> Self {
        let mut triggers = self.0.to_vec();
        triggers.push(extra);
        Triggers(triggers.into())
    }

    /// Whether `error` matches any trigger.
    pub fn matches(&self, error: &AttemptError) -> bool {
        self.0.iter().any(|trigger| trigger.matches(error))
    }

    /// The one place that decides whether an error fails over and whether it counts against
    /// health. A 429 with `retry-after` cools the provider down instead of counting; a refused
    /// credential ([`AttemptError::Rejected`]) takes it out of rotation at once; a 4xx that is
    /// not a trigger is the client's (its request, or its own credential passed through) and
    /// says nothing about the provider.
    pub fn judge(&self, error: &AttemptError) -> Verdict {
        let failover = self.matches(error);
        let health = match error {
            AttemptError::Rejected { .. } => HealthEffect::Reject(error.to_string()),
            AttemptError::NotServed { .. } => HealthEffect::Neutral,
            AttemptError::Status {
                status: 429,
                retry_after: Some(wait),
                ..
            } => HealthEffect::Cooldown(*wait),
            AttemptError::Status { status, .. } if !failover && (400..500).contains(status) => {
                HealthEffect::Neutral
            }
            other => HealthEffect::Failure(other.to_string()),
        };
        let retry_same = !matches!(
            error,
            AttemptError::Timeout { .. }
                | AttemptError::Rejected { .. }
                | AttemptError::NotServed { .. }
        ) && !matches!(error.status_code(), Some(429 | 503 | 529));
        Verdict {
            failover,
            retry_same,
            health,
        }
    }
}

impl Default for Triggers {
    fn default() -> Self {
        Triggers::from_config(&RoutingConfig::default())
    }
}

impl std::fmt::Debug for Triggers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Triggers({} in force)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::Detail;

    fn retry_after(status: u16, secs: u64) -> AttemptError {
        AttemptError::Status {
            status,
            retry_after: Some(Duration::from_secs(secs)),
            detail: Detail::default(),
        }
    }

    #[test]
    fn default_triggers_fail_over_on_429_5xx_529_timeouts_and_connection_errors() {
        let triggers = Triggers::default();
        for status in [429, 500, 502, 503, 504, 529] {
            assert!(
                triggers.judge(&AttemptError::status(status)).failover,
                "{status}"
            );
        }
        assert!(
            triggers
                .judge(&AttemptError::Timeout {
                    phase: "first event"
                })
                .failover
        );
        let refused = AttemptError::Connection {
            message: "refused".into(),
        };
        assert!(triggers.judge(&refused).failover);
    }

    #[test]
    fn client_errors_neither_fail_over_nor_count() {
        let triggers = Triggers::default();
        for status in [400, 404, 413] {
            let verdict = triggers.judge(&AttemptError::status(status));
            assert!(!verdict.failover);
            assert_eq!(verdict.health, HealthEffect::Neutral);
        }
    }

    fn rejected(status: u16) -> AttemptError {
        AttemptError::Rejected {
            status,
            detail: Detail::default(),
        }
    }

    #[test]
    fn a_refused_credential_fails_over_and_rejects_the_provider() {
        for status in [401, 402, 403, 429] {
            let verdict = Triggers::default().judge(&rejected(status));
            assert!(verdict.failover, "{status}");
            assert!(!verdict.retry_same, "{status}");
            assert!(
                matches!(verdict.health, HealthEffect::Reject(_)),
                "{status}"
            );
        }
        let off = RoutingConfig {
            trigger_on_rejected: false,
            ..RoutingConfig::default()
        };
        assert!(!Triggers::from_config(&off).judge(&rejected(401)).failover);
    }

    #[test]
    fn a_provider_that_does_not_serve_the_model_fails_over_without_a_health_effect() {
        let unserved = AttemptError::NotServed {
            status: 404,
            detail: Detail::default(),
        };
        let verdict = Triggers::default().judge(&unserved);
        assert!(verdict.failover);
        assert!(!verdict.retry_same);
        assert_eq!(verdict.health, HealthEffect::Neutral);
    }

    #[test]
    fn the_clients_own_credential_refused_reaches_it_and_leaves_health_alone() {
        for status in [401, 403] {
            let verdict = Triggers::default().judge(&AttemptError::status(status));
            assert!(!verdict.failover);
            assert_eq!(verdict.health, HealthEffect::Neutral);
        }
    }

    #[test]
    fn rate_limit_with_retry_after_cools_down_instead_of_counting() {
        let verdict = Triggers::default().judge(&retry_after(429, 2));
        assert!(verdict.failover);
        assert_eq!(
            verdict.health,
            HealthEffect::Cooldown(Duration::from_secs(2))
        );
    }

    #[test]
    fn a_timed_out_rate_limited_overloaded_or_rejected_provider_is_not_retried_for_the_same_request()
     {
        let triggers = Triggers::default();
        assert!(
            !triggers
                .judge(&AttemptError::Timeout {
                    phase: "first event"
                })
                .retry_same
        );
        assert!(!triggers.judge(&rejected(401)).retry_same);
        assert!(!triggers.judge(&AttemptError::status(429)).retry_same);
        assert!(!triggers.judge(&retry_after(429, 2)).retry_same);
        assert!(!triggers.judge(&AttemptError::status(503)).retry_same);
        assert!(!triggers.judge(&AttemptError::status(529)).retry_same);
        for status in [500, 502, 504] {
            assert!(triggers.judge(&AttemptError::status(status)).retry_same);
        }
    }

    #[test]
    fn embedders_can_add_triggers() {
        struct OnAuth;
        impl Trigger for OnAuth {
            fn matches(&self, error: &AttemptError) -> bool {
                matches!(error.status_code(), Some(401 | 403))
            }
        }
        let triggers = Triggers::default().with(Arc::new(OnAuth));
        assert!(triggers.judge(&AttemptError::status(403)).failover);
        assert!(!triggers.judge(&AttemptError::status(400)).failover);
    }

    #[test]
    fn other_errors_count_but_do_not_fail_over() {
        let verdict = Triggers::default().judge(&AttemptError::Other {
            message: "bad body".into(),
        });
        assert!(!verdict.failover);
        assert!(matches!(verdict.health, HealthEffect::Failure(_)));
    }
}
