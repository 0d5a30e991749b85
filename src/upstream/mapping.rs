//! A provider's `model_mapping`: the model name sent upstream for the client's. A key is an
//! exact name or a glob pattern; an exact key wins, then the longest matching pattern (the most
//! specific), ties in the file's (sorted) order.

use std::collections::{BTreeMap, HashMap};

use relayrace_actors::is_model_pattern;
use wildmatch::WildMatch;

/// The mapping, ready to look up.
#[derive(Clone, Debug, Default)]
pub(crate) struct ModelMapping {
    exact: HashMap<String, String>,
    /// Longest pattern first.
    patterns: Vec<(WildMatch, usize, String)>,
}

impl ModelMapping {
    pub(crate) fn new(mapping: &BTreeMap<String, String>) -> Self {
        let mut exact = HashMap::new();
        let mut patterns = Vec::new();
        for (from, to) in mapping {
            if is_model_pattern(from) {
                patterns.push((WildMatch::new(from), from.len(), to.clone()));
            } else {
                exact.insert(from.clone(), to.clone());
            }
        }
        patterns.sort_by_key(|(_, len, _)| std::cmp::Reverse(*len));
        ModelMapping { exact, patterns }
    }

    /// The upstream's name for `model`, when the mapping renames it.
    pub(crate) fn get(&self, model: &str) -> Option<&str> {
        if let Some(to) = self.exact.get(model) {
            return Some(to);
        }
        self.patterns
            .iter()
            .find(|(pattern, _, _)| pattern.matches(model))
            .map(|(_, _, to)| to.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exact_key_wins_then_the_most_specific_pattern() {
        let mapping = ModelMapping::new(&BTreeMap::from([
            ("claude-*".to_owned(), "glm-4.6".to_owned()),
            ("claude-haiku-*".to_owned(), "glm-4.5-air".to_owned()),
            ("claude-haiku-4-5".to_owned(), "exact".to_owned()),
        ]));
        assert_eq!(mapping.get("claude-haiku-4-5"), Some("exact"));
        assert_eq!(
            mapping.get("claude-haiku-4-5-20251001"),
            Some("glm-4.5-air")
        );
        assert_eq!(mapping.get("claude-opus-4-6"), Some("glm-4.6"));
        assert_eq!(mapping.get("gpt-5"), None);
    }
}
