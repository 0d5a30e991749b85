//! What `relayrace watch` writes for each event: a line per event and, on a terminal, the
//! provider table kept at the bottom and redrawn in place (the old table is erased, the event
//! line takes its place, the new table follows). Piped, only the lines.

use super::render::{Style, event_line, provider_table};
use crate::observe::event::{ProviderState, RelayEvent};

/// The state of a watch: the providers as the events tell them.
#[derive(Clone, Debug)]
pub struct WatchView {
    providers: Vec<ProviderState>,
    terminal: bool,
    style: Style,
    /// Lines of the table drawn last, to erase before the next event.
    drawn: usize,
}

impl WatchView {
    /// A view for a terminal (table redrawn in place) or a pipe (lines only).
    pub fn new(terminal: bool, style: Style) -> Self {
        WatchView {
            providers: Vec::new(),
            terminal,
            style,
            drawn: 0,
        }
    }

    /// The text to write for `event`.
    pub fn apply(&mut self, event: &RelayEvent) -> String {
        self.learn(event);
        let line = event_line(event, self.style);
        if !self.terminal {
            return format!("{line}\n");
        }
        let mut out = String::new();
        if self.drawn > 0 {
            // Up to the table's first line, then erase to the end of the screen.
            out.push_str(&format!("\x1b[{}A\x1b[J", self.drawn));
        }
        out.push_str(&line);
        out.push('\n');
        let table = provider_table(&self.providers, self.style);
        self.drawn = table.lines().count();
        out.push_str(&table);
        out
    }

    fn learn(&mut self, event: &RelayEvent) {
        match event {
            RelayEvent::Snapshot(snapshot) => self.providers = snapshot.providers.clone(),
            RelayEvent::Health(change) => {
                let Some(row) = self
                    .providers
                    .iter_mut()
                    .find(|p| p.name == change.provider)
                else {
                    return;
                };
                row.state = change.to.clone();
                row.since = Some(change.at.clone());
                // Events carry no count: known to be zero when healthy, unknown otherwise.
                row.consecutive_failures = (change.to == "healthy").then_some(0);
            }
            RelayEvent::Failover(_) | RelayEvent::Lagged(_) => {}
        }
    }
}
