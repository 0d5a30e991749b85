//! Property tests of the config loader (they run in CI on stable): whatever the file holds, it
//! loads or is refused with an error; it never panics.

use proptest::prelude::*;

use super::super::load::load_from;

/// YAML built from the config's own vocabulary, with values of any shape.
fn config_like() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("server"),
        Just("listen"),
        Just("workers"),
        Just("providers"),
        Just("- name"),
        Just("type"),
        Just("base_url"),
        Just("models"),
        Just("model_mapping"),
        Just("routing"),
        Just("model_order"),
        Just("health"),
        Just("probe_interval"),
        Just("timeouts"),
        Just("unknown"),
    ];
    let value = prop_oneof![
        Just(String::new()),
        Just("simulated".to_owned()),
        Just("[a, \"*\"]".to_owned()),
        Just("{x: 1}".to_owned()),
        Just("5s".to_owned()),
        Just("-1".to_owned()),
        "[ -~]{0,12}",
    ];
    let line = (0usize..4, key, value)
        .prop_map(|(indent, key, value)| format!("{}{key}: {value}\n", "  ".repeat(indent)));
    proptest::collection::vec(line, 0..16).prop_map(|lines| lines.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_file_loads_or_is_refused_without_a_panic(yaml in config_like()) {
        if let Ok(config) = load_from(&yaml, Vec::new()) {
            // What loads also validates without a panic.
            let _ = config.validate();
        }
    }

    #[test]
    fn arbitrary_text_never_panics(yaml in "\\PC{0,200}") {
        let _ = load_from(&yaml, Vec::new());
    }
}
