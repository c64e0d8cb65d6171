//! The progress bar of `once` at a terminal: repositories done of planned, bytes
//! copied and the image under way, fed by the engine's progress events.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use ocisync_engine::{ProgressEvent, ProgressObserver};
use ocisync_oci::Reference;

/// A bar on stdout that follows every sync of a pass.
pub struct ProgressDisplay {
    bar: ProgressBar,
    tally: Arc<Mutex<Tally>>,
}

/// What the bar's message says, kept apart from drawing so it can be tested.
#[derive(Debug, Default)]
struct Tally {
    bytes: u64,
    current: Option<String>,
}

impl Tally {
    fn apply(&mut self, event: &ProgressEvent) {
        match event {
            ProgressEvent::TagStarted { repo, reference } => {
                let separator = if matches!(reference, Reference::Digest(_)) {
                    '@'
                } else {
                    ':'
                };
                self.current = Some(format!("{repo}{separator}{reference}"));
            }
            ProgressEvent::TagDone { bytes, .. } => self.bytes = self.bytes.saturating_add(*bytes),
            ProgressEvent::RepositoriesPlanned { .. } | ProgressEvent::RepositoryDone => {}
        }
    }

    fn message(&self) -> String {
        match &self.current {
            Some(current) => format!("{} copied · {current}", HumanBytes(self.bytes)),
            None => format!("{} copied", HumanBytes(self.bytes)),
        }
    }
}

impl ProgressDisplay {
    pub fn on_stdout() -> ProgressDisplay {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stdout());
        // The template is a constant; should it ever be rejected, the default style is fine.
        if let Ok(style) = ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} repositories  {msg}") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        ProgressDisplay {
            bar,
            tally: Arc::default(),
        }
    }

    /// The engine-side hook that moves this bar.
    pub fn observer(&self) -> ProgressObserver {
        let bar = self.bar.clone();
        let tally = Arc::clone(&self.tally);
        ProgressObserver::new(move |event| {
            match &event {
                ProgressEvent::RepositoriesPlanned { total } => bar.inc_length(*total as u64),
                ProgressEvent::RepositoryDone => bar.inc(1),
                ProgressEvent::TagStarted { .. } | ProgressEvent::TagDone { .. } => {}
            }
            let mut tally = tally.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            tally.apply(&event);
            bar.set_message(tally.message());
        })
    }

    /// Clears the bar so the summary starts on a clean line.
    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use ocisync_engine::Outcome;

    use super::*;

    #[test]
    fn the_message_counts_bytes_and_names_the_image_under_way() {
        let mut tally = Tally::default();
        assert_eq!(tally.message(), "0 B copied");
        tally.apply(&ProgressEvent::TagStarted {
            repo: "library/alpine".parse().unwrap(),
            reference: Reference::Tag("3.20".parse().unwrap()),
        });
        tally.apply(&ProgressEvent::TagDone {
            bytes: 2048,
            outcome: Outcome::Copied,
        });
        tally.apply(&ProgressEvent::TagDone {
            bytes: 2048,
            outcome: Outcome::Copied,
        });
        assert_eq!(tally.message(), "4.00 KiB copied · library/alpine:3.20");
    }
}
