//! Text for `relayrace watch` and `relayrace status`: pure functions of what the relay sent (and
//! the time, where an age is shown), so their output can be compared with expected text.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use crate::observe::event::{AttemptSummary, Failover, ProviderState, RelayEvent};

/// What `relayrace status` reads of `GET /status`.
#[derive(Clone, Debug, Deserialize)]
pub struct StatusView {
    /// The strategy in force.
    pub strategy: String,
    /// Whether failover races are on.
    pub failover: bool,
    /// Every provider, in configured order.
    pub providers: Vec<StatusRow>,
    /// Hedging's budget, counts and delays; absent from a relay that does not hedge.
    #[serde(default)]
    pub hedging: Option<HedgingView>,
}

/// What `relayrace status` reads of `/status`'s `hedging`.
#[derive(Clone, Debug, Deserialize)]
pub struct HedgingView {
    /// Whether hedging is on.
    pub enabled: bool,
    /// The budget over its window.
    pub budget: HedgeBudgetView,
    /// Hedged requests since the start, by how they ended.
    pub counts: HedgeCountsView,
    /// Each provider's delays.
    pub providers: Vec<HedgeDelaysView>,
}

/// The hedge budget as `/status` shows it.
#[derive(Clone, Debug, Deserialize)]
pub struct HedgeBudgetView {
    /// The window, in milliseconds.
    pub window_ms: u64,
    /// Hedges started in the window.
    pub hedges: u64,
    /// Hedges the window allows.
    pub allowed: u64,
}

/// Hedge counts as `/status` shows them.
#[derive(Clone, Debug, Deserialize)]
pub struct HedgeCountsView {
    /// Hedges started.
    pub started: u64,
    /// Won by the slow primary after all.
    pub won_by_original: u64,
    /// Won by the hedge's race.
    pub won_by_hedge: u64,
    /// Nobody committed.
    pub failed: u64,
    /// Not hedged: the budget was spent.
    pub budget_spent: u64,
}

/// One provider's hedge delays as `/status` shows them.
#[derive(Clone, Debug, Deserialize)]
pub struct HedgeDelaysView {
    /// The provider.
    pub name: String,
    /// Whether it is hedged.
    pub enabled: bool,
    /// Per class of request.
    pub delays: Vec<HedgeDelayView>,
}

/// One class's delay.
#[derive(Clone, Debug, Deserialize)]
pub struct HedgeDelayView {
    /// The class (`under_32kb`, …, `whole`).
    pub class: String,
    /// The delay in milliseconds.
    pub delay_ms: u64,
    /// Whether it is learned (else the initial delay).
    pub learned: bool,
}

/// One provider of [`StatusView`]; fields the relay leaves out read as absent.
#[derive(Clone, Debug, Deserialize)]
pub struct StatusRow {
    /// Name.
    pub name: String,
    /// Health state.
    pub state: String,
    /// Its served models as configured (names and patterns); empty: every model.
    #[serde(default)]
    pub models: Vec<String>,
    /// Whether it serves any model; absent from a relay that does not say.
    #[serde(default)]
    pub serves_every_model: Option<bool>,
    /// When it entered that state (RFC 3339).
    #[serde(default)]
    pub since: Option<String>,
    /// Failures since its last success.
    #[serde(default)]
    pub consecutive_failures: Option<u32>,
    /// Requests it answered.
    #[serde(default)]
    pub requests: u64,
    /// Requests where it was primary and failed over.
    #[serde(default)]
    pub failovers: u64,
    /// Median whole-request time.
    #[serde(default)]
    pub latency_p50_ms: Option<u64>,
    /// 99th percentile whole-request time.
    #[serde(default)]
    pub latency_p99_ms: Option<u64>,
    /// Median time to first event.
    #[serde(default)]
    pub first_event_p50_ms: Option<u64>,
    /// 99th percentile time to first event.
    #[serde(default)]
    pub first_event_p99_ms: Option<u64>,
}

/// How output is dressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    /// ANSI colours.
    pub color: bool,
}

/// `relayrace status`: the strategy, one row per provider, then the models each serves.
pub fn status_table(view: &StatusView, now: SystemTime, style: Style) -> String {
    let header = [
        "PROVIDER",
        "STATE",
        "SINCE",
        "FAILS",
        "REQUESTS",
        "FAILOVERS",
        "P50",
        "P99",
        "TTFE P50",
        "TTFE P99",
    ];
    let rows: Vec<(String, Vec<String>)> = view
        .providers
        .iter()
        .map(|row| {
            let cells = vec![
                row.name.clone(),
                row.state.clone(),
                row.since.as_deref().map_or_else(dash, |s| age(s, now)),
                row.consecutive_failures
                    .map_or_else(dash, |n| n.to_string()),
                row.requests.to_string(),
                row.failovers.to_string(),
                ms(row.latency_p50_ms),
                ms(row.latency_p99_ms),
                ms(row.first_event_p50_ms),
                ms(row.first_event_p99_ms),
            ];
            (row.state.clone(), cells)
        })
        .collect();
    let failover = if view.failover { "on" } else { "off" };
    let mut out = format!("strategy {}, failover {failover}\n", view.strategy);
    out.push_str(&table(&header, &rows, style));
    out.push_str(&served_models(&view.providers));
    if let Some(hedging) = &view.hedging {
        out.push_str(&hedging_lines(hedging));
    }
    out
}

/// `hedging on: …` with the budget and counts, then each provider's delays per class (`~` marks
/// an initial delay, not learned yet).
fn hedging_lines(hedging: &HedgingView) -> String {
    if !hedging.enabled {
        return "hedging off\n".to_owned();
    }
    let (budget, counts) = (&hedging.budget, &hedging.counts);
    let mut out = format!(
        "hedging on: {} of {} allowed in the last {}; since start {} hedged (won by the hedge \
         {}, by the original {}, failed {}), {} not hedged for budget\n",
        budget.hedges,
        budget.allowed,
        seconds(budget.window_ms),
        counts.started,
        counts.won_by_hedge,
        counts.won_by_original,
        counts.failed,
        counts.budget_spent,
    );
    let width = hedging
        .providers
        .iter()
        .map(|p| p.name.chars().count())
        .max()
        .unwrap_or(0);
    for provider in &hedging.providers {
        let delays = if provider.enabled {
            let each: Vec<String> = provider
                .delays
                .iter()
                .map(|d| {
                    let mark = if d.learned { "" } else { "~" };
                    format!("{} {mark}{}", d.class, seconds(d.delay_ms))
                })
                .collect();
            each.join(", ")
        } else {
            "not hedged".to_owned()
        };
        let _ = writeln!(out, "  {:<width$}  {delays}", provider.name);
    }
    out
}

/// Milliseconds as seconds with one decimal (`6.0s`, `1.5s`).
fn seconds(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

/// `models:`, then one line per provider: its names and patterns, `every model` without any
/// (and after them when a pattern serves every model), `-` from a relay that does not say.
fn served_models(providers: &[StatusRow]) -> String {
    let width = providers
        .iter()
        .map(|p| p.name.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::from("models:\n");
    for provider in providers {
        let served = match (provider.models.as_slice(), provider.serves_every_model) {
            ([], Some(true)) => "every model".to_owned(),
            ([], _) => dash(),
            (models, Some(true)) => format!("{} (every model)", models.join(", ")),
            (models, _) => models.join(", "),
        };
        let _ = writeln!(out, "  {:<width$}  {served}", provider.name);
    }
    out
}

/// The provider table `relayrace watch` keeps at the bottom of a terminal.
pub fn provider_table(providers: &[ProviderState], style: Style) -> String {
    let header = ["PROVIDER", "STATE", "SINCE", "FAILS"];
    let rows: Vec<(String, Vec<String>)> = providers
        .iter()
        .map(|p| {
            let cells = vec![
                p.name.clone(),
                p.state.clone(),
                p.since.as_deref().map_or_else(dash, clock),
                p.consecutive_failures.map_or_else(dash, |n| n.to_string()),
            ];
            (p.state.clone(), cells)
        })
        .collect();
    table(&header, &rows, style)
}

/// One line (no newline) for one event of the stream.
pub fn event_line(event: &RelayEvent, style: Style) -> String {
    match event {
        RelayEvent::Snapshot(snapshot) => {
            let states: Vec<String> = snapshot
                .providers
                .iter()
                .map(|p| {
                    format!(
                        "{} {}",
                        p.name,
                        paint(&p.state, state_color(&p.state), style)
                    )
                })
                .collect();
            format!("{} snapshot  {}", clock(&snapshot.at), states.join(", "))
        }
        RelayEvent::Health(change) => format!(
            "{} health    {} {} -> {}: {}",
            clock(&change.at),
            change.provider,
            paint(&change.from, state_color(&change.from), style),
            paint(&change.to, state_color(&change.to), style),
            change.reason
        ),
        RelayEvent::Failover(failover) => failover_line(failover, style),
        RelayEvent::Lagged(lagged) => format!(
            "{:12} {}    missed {} {} events",
            "",
            paint("lagged", LAGGED, style),
            lagged.missed,
            lagged.stream
        ),
    }
}

fn failover_line(failover: &Failover, style: Style) -> String {
    let winner = match &failover.winner {
        Some(winner) => format!("-> {winner}"),
        None => paint("-> no winner", RED, style),
    };
    let attempts: Vec<String> = failover.attempts.iter().map(attempt).collect();
    format!(
        "{} {}  {} {} ({}) {winner} in {} ms [{}]",
        clock(&failover.at),
        paint("failover", FAILOVER, style),
        failover.request_id,
        failover.primary,
        failover.cause,
        failover.duration_ms,
        attempts.join(", ")
    )
}

fn attempt(attempt: &AttemptSummary) -> String {
    let outcome = match (&attempt.cause, attempt.outcome.as_str()) {
        (Some(cause), _) => cause.as_str(),
        (None, "succeeded") => "ok",
        (None, other) => other,
    };
    format!("{} {outcome} {}ms", attempt.provider, attempt.latency_ms)
}

/// Left-aligned columns two spaces apart; each row's state cell (the second) coloured.
fn table(header: &[&str], rows: &[(String, Vec<String>)], style: Style) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for (_, cells) in rows {
        for (width, cell) in widths.iter_mut().zip(cells) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let pad = |i: usize, cell: &str| format!("{cell:<width$}", width = widths[i]);
    let mut out = String::new();
    let head: Vec<String> = header.iter().enumerate().map(|(i, h)| pad(i, h)).collect();
    push_line(&mut out, &head);
    for (state, cells) in rows {
        let cells: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, cell)| match i {
                1 => paint(&pad(i, cell), state_color(state), style),
                _ => pad(i, cell),
            })
            .collect();
        push_line(&mut out, &cells);
    }
    out
}

fn push_line(out: &mut String, cells: &[String]) {
    out.push_str(cells.join("  ").trim_end());
    out.push('\n');
}

const GREEN: &str = "32";
const YELLOW: &str = "33";
const RED: &str = "31";
const BOLD_RED: &str = "1;31";
const DIM: &str = "2";
const FAILOVER: &str = "36";
const LAGGED: &str = "35";

fn state_color(state: &str) -> &'static str {
    match state {
        "healthy" => GREEN,
        "half_open" | "cooling_down" => YELLOW,
        "unhealthy" => RED,
        "failed" | "rejected" => BOLD_RED,
        _ => DIM,
    }
}

fn paint(text: &str, color: &str, style: Style) -> String {
    if style.color {
        format!("\x1b[{color}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

fn dash() -> String {
    "-".to_owned()
}

fn ms(value: Option<u64>) -> String {
    value.map_or_else(dash, |ms| format!("{ms}ms"))
}

/// The time of day of an RFC 3339 time (`03:04:05.006`), or the text as it came.
fn clock(time: &str) -> String {
    time.get(11..23).unwrap_or(time).to_owned()
}

/// How long ago an RFC 3339 time was, compactly (`42s`, `4m12s`, `3h04m`, `2d03h`).
fn age(time: &str, now: SystemTime) -> String {
    let Ok(then) = humantime_serde::re::humantime::parse_rfc3339_weak(time) else {
        return time.to_owned();
    };
    let secs = now.duration_since(then).unwrap_or(Duration::ZERO).as_secs();
    let mut out = String::new();
    let _ = match secs {
        0..60 => write!(out, "{secs}s"),
        60..3600 => write!(out, "{}m{:02}s", secs / 60, secs % 60),
        3600..86400 => write!(out, "{}h{:02}m", secs / 3600, secs % 3600 / 60),
        _ => write!(out, "{}d{:02}h", secs / 86400, secs % 86400 / 3600),
    };
    out
}

#[cfg(test)]
mod colour_tests {
    use super::*;

    #[test]
    fn a_provider_that_needs_the_operator_is_painted_as_an_alarm() {
        assert_eq!(state_color("rejected"), BOLD_RED);
        assert_eq!(state_color("failed"), BOLD_RED);
        assert_eq!(state_color("healthy"), GREEN);
    }
}
