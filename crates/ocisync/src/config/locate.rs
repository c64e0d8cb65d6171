//! Finds where a key path (`syncs[0].from`) sits in YAML text, for error messages.
//!
//! serde_yaml reports positions for syntax and type errors only; checks made after
//! parsing (an unknown registry name, a bad URL) know the key path, and this maps it
//! back to a line and column.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// Positions of every key path in a YAML document; empty if the text does not parse.
pub fn key_positions(text: &str) -> HashMap<String, Position> {
    let mut collector = Collector::default();
    let mut parser = Parser::new_from_str(text);
    if parser.load(&mut collector, false).is_err() {
        return HashMap::new();
    }
    collector.positions
}

enum Frame {
    Mapping { path: String, key: Option<String> },
    Sequence { path: String, index: usize },
}

#[derive(Default)]
struct Collector {
    stack: Vec<Frame>,
    positions: HashMap<String, Position>,
}

impl Collector {
    /// The path of the value about to start, and marks it consumed in its parent.
    fn next_value_path(&mut self) -> Option<String> {
        match self.stack.last_mut()? {
            Frame::Mapping { path, key } => {
                let key = key.take()?;
                Some(if path.is_empty() { key } else { format!("{path}.{key}") })
            }
            Frame::Sequence { path, index } => {
                let value_path = format!("{path}[{index}]");
                *index += 1;
                Some(value_path)
            }
        }
    }

    fn expecting_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Mapping { key: None, .. }))
    }

    fn record(&mut self, path: &str, mark: Marker) {
        self.positions.entry(path.to_owned()).or_insert(Position {
            line: mark.line(),
            column: mark.col() + 1,
        });
    }
}

impl MarkedEventReceiver for Collector {
    fn on_event(&mut self, event: Event, mark: Marker) {
        match event {
            Event::Scalar(value, ..) if self.expecting_key() => {
                if let Some(Frame::Mapping { path, key }) = self.stack.last_mut() {
                    let full = if path.is_empty() {
                        value.clone()
                    } else {
                        format!("{path}.{value}")
                    };
                    *key = Some(value);
                    self.record(&full, mark);
                }
            }
            Event::Scalar(..) | Event::Alias(_) => {
                if let Some(path) = self.next_value_path() {
                    self.record(&path, mark);
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let path = if self.stack.is_empty() {
                    String::new()
                } else {
                    self.next_value_path().unwrap_or_default()
                };
                if !path.is_empty() {
                    self.record(&path, mark);
                }
                self.stack.push(if matches!(event, Event::MappingStart(..)) {
                    Frame::Mapping { path, key: None }
                } else {
                    Frame::Sequence { path, index: 0 }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_keys_and_sequence_items() {
        let text = "version: 1\nregistries:\n  upstream:\n    urls: [\"http://a\", \"http://b\"]\nsyncs:\n  - from: upstream\n    to: mirror\n";
        let positions = key_positions(text);
        assert_eq!(positions["version"], Position { line: 1, column: 1 });
        assert_eq!(positions["registries.upstream"], Position { line: 3, column: 3 });
        assert_eq!(positions["registries.upstream.urls"].line, 4);
        assert_eq!(positions["registries.upstream.urls[1]"].line, 4);
        assert_eq!(positions["syncs[0].from"], Position { line: 6, column: 5 });
        assert_eq!(positions["syncs[0].to"], Position { line: 7, column: 5 });
    }

    #[test]
    fn unparsable_text_gives_no_positions() {
        assert!(key_positions("a: [").is_empty());
    }
}
