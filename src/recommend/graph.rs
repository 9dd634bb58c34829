//! Who read what, in memory: each reader's history and each article's
//! audience, kept current as views and reactions are acknowledged, so that a
//! recommendation never scans stored events.

use std::collections::HashMap;

/// One article in a reader's history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Read {
    pub article: i32,
    /// When it was last read (Unix seconds).
    pub at: i64,
    /// How strong a signal it is: a view 1, a reaction more.
    pub weight: f32,
}

/// A reader who read an article, and when they first did.
#[derive(Debug, Clone, Copy)]
pub struct Reader {
    pub reader: u32,
    pub at: i64,
}

/// Readers' histories and articles' audiences.
#[derive(Debug, Default)]
pub struct Graph {
    reader_ids: HashMap<Box<str>, u32>,
    /// By reader number; each in the order events arrived, one entry per
    /// article.
    histories: Vec<Vec<Read>>,
    /// By article; one entry per reader, in the order they arrived.
    audiences: HashMap<i32, Vec<Reader>>,
    events: usize,
}

impl Graph {
    /// Records that `reader` read `article` at `at` (Unix seconds). A repeat
    /// keeps the latest time and the strongest weight.
    pub fn record(&mut self, reader: &str, article: i32, at: i64, weight: f32) {
        let number = match self.reader_ids.get(reader) {
            Some(number) => *number,
            None => {
                let number = self.histories.len() as u32;
                self.reader_ids.insert(reader.into(), number);
                self.histories.push(Vec::new());
                number
            }
        };
        self.events += 1;
        let history = &mut self.histories[number as usize];
        if let Some(read) = history.iter_mut().find(|read| read.article == article) {
            read.at = read.at.max(at);
            read.weight = read.weight.max(weight);
            return;
        }
        history.push(Read {
            article,
            at,
            weight,
        });
        self.audiences
            .entry(article)
            .or_default()
            .push(Reader { reader: number, at });
    }

    /// The reader's number, if they have read anything.
    pub fn reader(&self, key: &str) -> Option<u32> {
        self.reader_ids.get(key).copied()
    }

    /// A reader's history, in arrival order.
    pub fn history(&self, reader: u32) -> &[Read] {
        self.histories
            .get(reader as usize)
            .map_or(&[], Vec::as_slice)
    }

    /// An article's readers, in arrival order.
    pub fn audience(&self, article: i32) -> &[Reader] {
        self.audiences.get(&article).map_or(&[], Vec::as_slice)
    }

    /// Readers known.
    pub fn readers(&self) -> usize {
        self.histories.len()
    }

    /// Events recorded (repeats included).
    pub fn events(&self) -> usize {
        self.events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeat_read_keeps_one_entry_with_the_latest_time() {
        let mut graph = Graph::default();
        graph.record("r1", 7, 100, 1.0);
        graph.record("r1", 7, 50, 2.0);
        graph.record("r1", 7, 300, 1.0);
        let reader = graph.reader("r1").unwrap();
        assert_eq!(
            graph.history(reader),
            &[Read {
                article: 7,
                at: 300,
                weight: 2.0
            }]
        );
        assert_eq!(graph.audience(7).len(), 1);
        assert_eq!(graph.events(), 3);
    }
}
