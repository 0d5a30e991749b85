//! Which providers serve a request's model, and in which order they are tried. Pure: built
//! once from the configuration, read by every request.
//!
//! A provider serves the models its `models` list names (exact names or glob patterns); an
//! empty list serves every model. The first `routing.model_order` rule whose pattern matches
//! the model puts its providers first, in its order; the other providers that serve the model
//! follow by priority. With no model lists and no rules, every request reads the priority
//! order as it is, without a copy.

use std::borrow::Cow;
use std::collections::HashSet;

use wildmatch::WildMatch;

use crate::config::{ModelOrder, ProviderSettings, is_model_pattern};

/// The models one provider serves.
#[derive(Clone, Debug)]
enum Serves {
    Every,
    Only {
        exact: HashSet<Box<str>>,
        patterns: Vec<WildMatch>,
    },
}

impl Serves {
    fn of(models: &[String]) -> Self {
        if models.is_empty() {
            return Serves::Every;
        }
        let (patterns, exact): (Vec<&String>, Vec<&String>) =
            models.iter().partition(|m| is_model_pattern(m));
        Serves::Only {
            exact: exact.into_iter().map(|m| m.as_str().into()).collect(),
            patterns: patterns.into_iter().map(|p| WildMatch::new(p)).collect(),
        }
    }

    fn serves(&self, model: &str) -> bool {
        match self {
            Serves::Every => true,
            Serves::Only { exact, patterns } => {
                exact.contains(model) || patterns.iter().any(|p| p.matches(model))
            }
        }
    }
}

/// Eligibility and order of every provider, by model.
#[derive(Clone, Debug)]
pub(crate) struct Eligibility {
    /// What each provider (in configured order) serves.
    serves: Vec<Serves>,
    /// The per-model order rules: a pattern and provider indices.
    rules: Vec<(WildMatch, Vec<usize>)>,
    /// Every provider's configured `models`, for the error that names what is served.
    listed: Vec<Vec<String>>,
    /// Whether any model restricts or reorders anything.
    by_model: bool,
}

impl Eligibility {
    pub(crate) fn new(providers: &[ProviderSettings], rules: &[ModelOrder]) -> Self {
        let index = |name: &String| providers.iter().position(|p| &p.name == name);
        let rules: Vec<(WildMatch, Vec<usize>)> = rules
            .iter()
            .map(|rule| {
                let order = rule.providers.iter().filter_map(index).collect();
                (WildMatch::new(&rule.model), order)
            })
            .collect();
        let serves: Vec<Serves> = providers.iter().map(|p| Serves::of(&p.models)).collect();
        let by_model = !rules.is_empty() || serves.iter().any(|s| !matches!(s, Serves::Every));
        Eligibility {
            serves,
            rules,
            listed: providers.iter().map(|p| p.models.clone()).collect(),
            by_model,
        }
    }

    /// Whether some provider serves only some models, or a rule reorders them.
    pub(crate) fn restricts(&self) -> bool {
        self.by_model
    }

    /// Whether provider `index` serves `model`.
    pub(crate) fn serves(&self, index: usize, model: &str) -> bool {
        self.serves.get(index).is_some_and(|s| s.serves(model))
    }

    /// The providers that serve `model`, in the order they are tried. `by_priority` is every
    /// provider's index by priority; without a model (or with nothing to restrict) it is the
    /// answer as it is.
    pub(crate) fn order<'a>(
        &self,
        model: Option<&str>,
        by_priority: &'a [usize],
    ) -> Cow<'a, [usize]> {
        let Some(model) = model.filter(|_| self.by_model) else {
            return Cow::Borrowed(by_priority);
        };
        let first: &[usize] = self
            .rules
            .iter()
            .find(|(pattern, _)| pattern.matches(model))
            .map_or(&[], |(_, order)| order.as_slice());
        let mut order: Vec<usize> = first
            .iter()
            .copied()
            .filter(|&i| self.serves(i, model))
            .collect();
        order.extend(
            by_priority
                .iter()
                .copied()
                .filter(|i| !first.contains(i) && self.serves(*i, model)),
        );
        Cow::Owned(order)
    }

    /// What the providers among `indices` serve, as configured (names and patterns), for an
    /// error message; `every model` when one of them serves every model.
    pub(crate) fn served_by(&self, indices: impl Iterator<Item = usize>) -> Vec<String> {
        let mut served: Vec<String> = Vec::new();
        for i in indices {
            match self.listed.get(i) {
                Some(models) if models.is_empty() => return vec!["every model".to_owned()],
                Some(models) => {
                    for model in models {
                        if !served.contains(model) {
                            served.push(model.clone());
                        }
                    }
                }
                None => {}
            }
        }
        served
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(name: &str, models: &[&str]) -> ProviderSettings {
        ProviderSettings::new(name).serves(models.iter().copied())
    }

    fn rule(model: &str, providers: &[&str]) -> ModelOrder {
        ModelOrder {
            model: model.into(),
            providers: providers.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    #[test]
    fn without_model_lists_every_request_reads_the_priority_order_as_it_is() {
        let eligibility = Eligibility::new(&[provider("a", &[]), provider("b", &[])], &[]);
        let by_priority = [1, 0];
        let order = eligibility.order(Some("claude-opus-4-6"), &by_priority);
        assert!(matches!(order, Cow::Borrowed(_)));
        assert_eq!(&*order, [1, 0]);
    }

    #[test]
    fn exact_names_and_patterns_decide_who_serves_a_model() {
        let eligibility = Eligibility::new(
            &[
                provider("opus", &["claude-opus-4-6"]),
                provider("haiku", &["claude-haiku-*"]),
                provider("any", &[]),
            ],
            &[],
        );
        let by_priority = [0, 1, 2];
        let order = |model| eligibility.order(Some(model), &by_priority).into_owned();
        assert_eq!(order("claude-opus-4-6"), [0, 2]);
        assert_eq!(order("claude-haiku-4-5-20251001"), [1, 2]);
        assert_eq!(order("claude-haiku-4-5"), [1, 2]);
        assert_eq!(order("gpt-5"), [2]);
        assert_eq!(&*eligibility.order(None, &by_priority), [0, 1, 2]);
    }

    #[test]
    fn a_model_order_rule_puts_its_providers_first_and_the_rest_follow_by_priority() {
        let eligibility = Eligibility::new(
            &[
                provider("anthropic", &[]),
                provider("zai", &[]),
                provider("cheap", &["claude-haiku-*"]),
            ],
            &[rule("claude-haiku-*", &["cheap"]), rule("*", &["zai"])],
        );
        let by_priority = [0, 1, 2];
        let order = |model| eligibility.order(Some(model), &by_priority).into_owned();
        assert_eq!(order("claude-haiku-4-5"), [2, 0, 1]);
        // The first matching rule applies; `cheap` does not serve opus.
        assert_eq!(order("claude-opus-4-6"), [1, 0]);
    }

    #[test]
    fn a_rule_never_adds_a_provider_that_does_not_serve_the_model() {
        let eligibility = Eligibility::new(
            &[provider("a", &["claude-opus-*"]), provider("b", &[])],
            &[rule("claude-*", &["a"])],
        );
        assert_eq!(&*eligibility.order(Some("claude-haiku-4-5"), &[0, 1]), [1]);
    }

    #[test]
    fn the_served_models_are_named_once_each() {
        let eligibility = Eligibility::new(
            &[
                provider("a", &["claude-opus-4-6", "claude-haiku-*"]),
                provider("b", &["claude-opus-4-6"]),
                provider("c", &[]),
            ],
            &[],
        );
        assert_eq!(
            eligibility.served_by([0, 1].into_iter()),
            ["claude-opus-4-6", "claude-haiku-*"]
        );
        assert_eq!(eligibility.served_by([0, 2].into_iter()), ["every model"]);
    }
}
