//! A strict-enough reader of the Prometheus text exposition format.

use std::collections::BTreeMap;

use crate::header;

/// Labels of one series, as `(name, value)` pairs.
pub(super) type Labels<'a> = &'a [(&'a str, &'a str)];

/// A parsed Prometheus text exposition.
pub(super) struct Exposition {
    /// `(name, labels) -> value`.
    samples: BTreeMap<(String, BTreeMap<String, String>), f64>,
}

impl Exposition {
    /// Parses the text format strictly enough to catch malformed output: `# HELP` / `# TYPE`
    /// lines, then `name{label="value",...} value` lines whose family has a `# TYPE`.
    fn parse(text: &str) -> Self {
        let mut types = BTreeMap::new();
        let mut samples = BTreeMap::new();
        for line in text.lines().filter(|l| !l.is_empty()) {
            if let Some(comment) = line.strip_prefix("# ") {
                let mut parts = comment.splitn(3, ' ');
                let (kind, name) = (parts.next().unwrap(), parts.next().unwrap());
                assert!(valid_name(name), "bad name in {line:?}");
                if kind == "TYPE" {
                    let family = parts.next().unwrap();
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&family),
                        "{line:?}"
                    );
                    types.insert(name.to_owned(), family.to_owned());
                } else {
                    assert_eq!(kind, "HELP", "{line:?}");
                }
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("a value");
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("bad value: {line:?}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, labels(rest.strip_suffix('}').expect(line))),
                None => (series, BTreeMap::new()),
            };
            assert!(valid_name(name), "bad name in {line:?}");
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| types.contains_key(*f)))
                .unwrap_or(name);
            assert!(types.contains_key(family), "no # TYPE for {line:?}");
            samples.insert((name.to_owned(), labels), value);
        }
        Exposition { samples }
    }

    pub(super) fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.samples.get(&(name.to_owned(), labels)).copied()
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `a="x",b="y"` (no escapes needed by this relay's values).
fn labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").expect(text);
        let (value, after) = after.split_once('"').expect(text);
        assert!(valid_name(key) && !key.contains(':'), "bad label {key:?}");
        labels.insert(key.to_owned(), value.to_owned());
        rest = after.strip_prefix(',').unwrap_or(after);
    }
    labels
}

pub(super) async fn scrape(client: &reqwest::Client, base: &str, key: Option<&str>) -> Exposition {
    let mut request = client.get(format!("{base}/metrics"));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(header(&response, "content-type").starts_with("text/plain; version=0.0.4"));
    Exposition::parse(&response.text().await.unwrap())
}
