//! The scenario table. When `RELAYRACE_CONFORMANCE_REPORT` names a file, every scenario that
//! passes appends its row there (tab-separated); `scripts/conformance.sh` turns the rows into
//! the table of `docs/conformance.md`.

use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use crate::fixture::human;

/// The variable naming the results file.
pub(crate) const REPORT_VAR: &str = "RELAYRACE_CONFORMANCE_REPORT";

static FILE: Mutex<()> = Mutex::new(());

/// One row of the table.
pub(crate) struct Row<'a> {
    /// Sorts the table: `01`…`16` for the scenarios, then load, input, security.
    pub(crate) id: &'a str,
    pub(crate) scenario: &'a str,
    /// What the relay and the upstreams were configured with, beyond the suite's defaults.
    pub(crate) configuration: String,
    /// What the issue asks for.
    pub(crate) expected: &'a str,
    /// What the test observed.
    pub(crate) outcome: String,
    /// The measured time the bound applies to.
    pub(crate) time: Duration,
    /// The bound the test asserted.
    pub(crate) bound: Duration,
}

/// Appends `row` to the results file, if one is named.
pub(crate) fn record(row: Row<'_>) {
    let Some(path) = std::env::var_os(REPORT_VAR) else {
        return;
    };
    let time = format!("{} (bound {})", human(row.time), human(row.bound));
    let cells = [
        row.id,
        row.scenario,
        &row.configuration,
        row.expected,
        &row.outcome,
        &time,
    ];
    let line = cells.map(cell).join("\t");
    let _serial = FILE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    writeln!(file, "{line}").unwrap();
}

/// A table cell: one line, pipes escaped for markdown.
fn cell(text: &str) -> String {
    text.replace(['\t', '\n'], " ").replace('|', "\\|")
}
