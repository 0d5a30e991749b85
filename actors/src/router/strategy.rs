//! Routing strategies: pure, deterministic given a seed, fed only the providers in rotation.

use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;

use crate::config::StrategyKind;
use crate::upstream::ProviderId;

/// A provider that may be picked, as the strategy sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The provider.
    pub id: ProviderId,
    /// Lower is preferred by `failover`.
    pub priority: u32,
    /// Share under `weighted_round_robin`.
    pub weight: u32,
}

/// A strategy and its rotation state.
///
/// `pick` is given the providers in rotation, in configured order. Rotation state is kept per
/// provider id, so a provider that drops out and comes back resumes its fair place.
#[derive(Debug)]
pub struct Strategy {
    kind: StrategyKind,
    last: Option<ProviderId>,
    current_weights: Vec<i64>,
    deck: Vec<ProviderId>,
    rng: SmallRng,
}

impl Strategy {
    /// A strategy of `kind`; `seed` drives `shuffle`.
    pub fn new(kind: StrategyKind, seed: u64) -> Self {
        Self {
            kind,
            last: None,
            current_weights: Vec::new(),
            deck: Vec::new(),
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// The pick among `candidates` (in configured order); `None` when there are none.
    pub fn pick(&mut self, candidates: &[Candidate]) -> Option<ProviderId> {
        if candidates.is_empty() {
            return None;
        }
        let picked = match self.kind {
            StrategyKind::Failover => Some(failover(candidates)),
            StrategyKind::RoundRobin => Some(self.round_robin(candidates)),
            StrategyKind::WeightedRoundRobin => self.weighted(candidates),
            StrategyKind::Shuffle => self.shuffle(candidates),
        };
        self.last = picked;
        picked
    }

    fn round_robin(&self, candidates: &[Candidate]) -> ProviderId {
        let next = self
            .last
            .and_then(|last| candidates.iter().find(|c| c.id > last));
        next.unwrap_or(&candidates[0]).id
    }

    /// Smooth weighted round robin (as in nginx): every candidate gains its weight, the one
    /// with the most current weight is picked and pays back the total.
    fn weighted(&mut self, candidates: &[Candidate]) -> Option<ProviderId> {
        let max_id = candidates.iter().map(|c| c.id.index()).max()?;
        if self.current_weights.len() <= max_id {
            self.current_weights.resize(max_id + 1, 0);
        }
        let mut total = 0i64;
        let mut best: Option<ProviderId> = None;
        for candidate in candidates {
            let weight = i64::from(candidate.weight);
            total += weight;
            let current = &mut self.current_weights[candidate.id.index()];
            *current += weight;
            let better = match best {
                Some(b) => *current > self.current_weights[b.index()],
                None => true,
            };
            if better {
                best = Some(candidate.id);
            }
        }
        let best = best?;
        self.current_weights[best.index()] -= total;
        Some(best)
    }

    fn shuffle(&mut self, candidates: &[Candidate]) -> Option<ProviderId> {
        loop {
            match self.deck.pop() {
                Some(id) if candidates.iter().any(|c| c.id == id) => return Some(id),
                Some(_) => continue,
                None => {
                    self.deck = candidates.iter().map(|c| c.id).collect();
                    self.deck.shuffle(&mut self.rng);
                }
            }
        }
    }
}

fn failover(candidates: &[Candidate]) -> ProviderId {
    let mut best = &candidates[0];
    for candidate in &candidates[1..] {
        if candidate.priority < best.priority {
            best = candidate;
        }
    }
    best.id
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn candidates(spec: &[(usize, u32, u32)]) -> Vec<Candidate> {
        spec.iter()
            .map(|&(id, priority, weight)| Candidate {
                id: ProviderId(id),
                priority,
                weight,
            })
            .collect()
    }

    fn picks(strategy: &mut Strategy, candidates: &[Candidate], n: usize) -> Vec<usize> {
        (0..n)
            .map(|_| strategy.pick(candidates).unwrap().index())
            .collect()
    }

    #[test]
    fn failover_picks_the_lowest_priority_number_ties_in_configured_order() {
        let mut strategy = Strategy::new(StrategyKind::Failover, 0);
        let all = candidates(&[(0, 2, 1), (1, 1, 1), (2, 1, 1)]);
        assert_eq!(picks(&mut strategy, &all, 3), [1, 1, 1]);
    }

    #[test]
    fn no_candidates_no_pick() {
        for kind in StrategyKind::ALL {
            assert_eq!(Strategy::new(kind, 0).pick(&[]), None);
        }
    }

    #[test]
    fn round_robin_takes_each_in_turn() {
        let mut strategy = Strategy::new(StrategyKind::RoundRobin, 0);
        let all = candidates(&[(0, 1, 1), (1, 1, 1), (2, 1, 1)]);
        assert_eq!(picks(&mut strategy, &all, 7), [0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn round_robin_stays_fair_when_a_provider_drops_out_and_returns() {
        let mut strategy = Strategy::new(StrategyKind::RoundRobin, 0);
        let all = candidates(&[(0, 1, 1), (1, 1, 1), (2, 1, 1)]);
        let without_1 = candidates(&[(0, 1, 1), (2, 1, 1)]);
        assert_eq!(picks(&mut strategy, &all, 1), [0]);
        assert_eq!(picks(&mut strategy, &without_1, 3), [2, 0, 2]);
        assert_eq!(picks(&mut strategy, &all, 4), [0, 1, 2, 0]);
    }

    #[test]
    fn weighted_gives_exact_shares_per_cycle_without_bursts() {
        let mut strategy = Strategy::new(StrategyKind::WeightedRoundRobin, 0);
        let all = candidates(&[(0, 1, 5), (1, 1, 1), (2, 1, 1)]);
        let cycle = picks(&mut strategy, &all, 7);
        assert_eq!(cycle, [0, 0, 1, 0, 2, 0, 0]);
        for _ in 0..10 {
            assert_eq!(picks(&mut strategy, &all, 7), cycle);
        }
    }

    #[test]
    fn weighted_distribution_over_many_picks_is_exact() {
        let mut strategy = Strategy::new(StrategyKind::WeightedRoundRobin, 0);
        let all = candidates(&[(0, 1, 3), (1, 1, 2), (2, 1, 1)]);
        let mut counts = HashMap::new();
        for id in picks(&mut strategy, &all, 600) {
            *counts.entry(id).or_insert(0) += 1;
        }
        assert_eq!(counts[&0], 300);
        assert_eq!(counts[&1], 200);
        assert_eq!(counts[&2], 100);
    }

    #[test]
    fn shuffle_deals_every_provider_once_per_deck() {
        let mut strategy = Strategy::new(StrategyKind::Shuffle, 42);
        let all = candidates(&[(0, 1, 1), (1, 1, 1), (2, 1, 1), (3, 1, 1)]);
        let mut decks = Vec::new();
        for _ in 0..50 {
            let mut deck = picks(&mut strategy, &all, 4);
            decks.push(deck.clone());
            deck.sort_unstable();
            assert_eq!(deck, [0, 1, 2, 3]);
        }
        decks.dedup();
        assert!(decks.len() > 10, "decks should vary: {decks:?}");
    }

    #[test]
    fn shuffle_is_reproducible_from_its_seed() {
        let all = candidates(&[(0, 1, 1), (1, 1, 1), (2, 1, 1)]);
        let a = picks(&mut Strategy::new(StrategyKind::Shuffle, 7), &all, 30);
        let b = picks(&mut Strategy::new(StrategyKind::Shuffle, 7), &all, 30);
        assert_eq!(a, b);
    }

    #[test]
    fn shuffle_skips_providers_that_left_mid_deck() {
        let mut strategy = Strategy::new(StrategyKind::Shuffle, 3);
        let all = candidates(&[(0, 1, 1), (1, 1, 1), (2, 1, 1)]);
        let only_0 = candidates(&[(0, 1, 1)]);
        picks(&mut strategy, &all, 1);
        assert_eq!(picks(&mut strategy, &only_0, 5), [0, 0, 0, 0, 0]);
    }
}
