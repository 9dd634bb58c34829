//! Who read what, in memory: each reader's history and each article's
//! audience, kept current as views and reactions are acknowledged, so that a
//! recommendation never scans stored events.

use std::collections::HashMap;

use chrono::NaiveDateTime;

/// A time as the graph keeps it: Unix seconds in 32 bits (enough until
/// 2106), so that a read takes 12 bytes and a reader in an audience 8: ten
/// million events hold 200 MB rather than 320.
pub fn seconds(at: NaiveDateTime) -> u32 {
    u32::try_from(at.and_utc().timestamp().max(0)).unwrap_or(u32::MAX)
}

/// One article in a reader's history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Read {
    pub article: i32,
    /// When it was last read (see [`seconds`]).
    pub at: u32,
    /// How strong a signal it is: a view 1, a reaction more.
    pub weight: f32,
}

/// A reader who read an article, and when they first did.
#[derive(Debug, Clone, Copy)]
pub struct Reader {
    pub reader: u32,
    pub at: u32,
}

/// Readers' histories and articles' audiences.
#[derive(Debug, Default)]
pub struct Graph {
    reader_ids: HashMap<Box<str>, u32>,
    keys: Vec<Box<str>>,
    /// By reader number; one entry per article.
    histories: Vec<Vec<Read>>,
    /// By article id (ids are the store's, dense from 1); one entry per
    /// reader, oldest first (as loaded, then in the order events arrived).
    /// Indexed rather than hashed: a neighbour list asks after the audience
    /// of every candidate, hundreds of random lookups, and at a million
    /// articles a map costs two cache misses a lookup and 64 MB of buckets.
    audiences: Vec<Vec<Reader>>,
}

impl Graph {
    /// A graph of many events at once: `keys` are the readers' ids and each
    /// event names its reader by index into them. Much faster than
    /// recording the events one by one.
    pub fn build(keys: Vec<Box<str>>, events: impl IntoIterator<Item = (u32, Read)>) -> Self {
        let mut histories: Vec<Vec<Read>> = vec![Vec::new(); keys.len()];
        for (reader, read) in events {
            histories[reader as usize].push(read);
        }
        let mut audiences: Vec<Vec<Reader>> = Vec::new();
        for (number, history) in histories.iter_mut().enumerate() {
            // One entry per article, as `record` keeps it: the latest time
            // and the strongest signal in the history, the first time in
            // the audience.
            history.sort_unstable_by(|a, b| a.article.cmp(&b.article).then(a.at.cmp(&b.at)));
            let mut kept: Vec<Read> = Vec::with_capacity(history.len());
            for read in history.drain(..) {
                match kept.last_mut() {
                    Some(last) if last.article == read.article => {
                        last.at = read.at;
                        last.weight = last.weight.max(read.weight);
                    }
                    _ => {
                        if let Some(audience) = audience_mut(&mut audiences, read.article) {
                            audience.push(Reader {
                                reader: number as u32,
                                at: read.at,
                            });
                        }
                        kept.push(read);
                    }
                }
            }
            kept.sort_unstable_by_key(|read| read.at);
            kept.shrink_to_fit();
            *history = kept;
        }
        // Grown by pushes, each audience would keep up to as much room
        // again: a hundred megabytes for ten million events.
        for audience in &mut audiences {
            audience.sort_unstable_by_key(|reader| reader.at);
            audience.shrink_to_fit();
        }
        let reader_ids = keys
            .iter()
            .enumerate()
            .map(|(number, key)| (key.clone(), number as u32))
            .collect();
        Self {
            reader_ids,
            keys,
            histories,
            audiences,
        }
    }

    /// Records that `reader` read `article` at `at` ([`seconds`]); true
    /// when the article is new to the reader's history. A repeat keeps the
    /// latest time and the strongest weight.
    pub fn record(&mut self, reader: &str, article: i32, at: u32, weight: f32) -> bool {
        let number = match self.reader_ids.get(reader) {
            Some(number) => *number,
            None => {
                let number = self.histories.len() as u32;
                self.reader_ids.insert(reader.into(), number);
                self.keys.push(reader.into());
                self.histories.push(Vec::new());
                number
            }
        };
        let history = &mut self.histories[number as usize];
        if let Some(read) = history.iter_mut().find(|read| read.article == article) {
            read.at = read.at.max(at);
            read.weight = read.weight.max(weight);
            return false;
        }
        push_sparingly(
            history,
            Read {
                article,
                at,
                weight,
            },
        );
        if let Some(audience) = audience_mut(&mut self.audiences, article) {
            push_sparingly(audience, Reader { reader: number, at });
        }
        true
    }

    /// Records everything in `other` (events that arrived while this graph
    /// was being built).
    pub fn absorb(&mut self, other: Graph) {
        for (key, history) in other.keys.iter().zip(other.histories) {
            for read in history {
                self.record(key, read.article, read.at, read.weight);
            }
        }
    }

    /// The reader's number, if they have read anything.
    pub fn reader(&self, key: &str) -> Option<u32> {
        self.reader_ids.get(key).copied()
    }

    /// A reader's history, in no particular order.
    pub fn history(&self, reader: u32) -> &[Read] {
        self.histories
            .get(reader as usize)
            .map_or(&[], Vec::as_slice)
    }

    /// An article's readers, oldest first.
    pub fn audience(&self, article: i32) -> &[Reader] {
        usize::try_from(article)
            .ok()
            .and_then(|slot| self.audiences.get(slot))
            .map_or(&[], Vec::as_slice)
    }

    /// Every article someone read.
    pub fn articles(&self) -> impl Iterator<Item = i32> + '_ {
        self.audiences
            .iter()
            .enumerate()
            .filter(|(_, audience)| !audience.is_empty())
            .map(|(article, _)| article as i32)
    }

    /// Readers known.
    pub fn readers(&self) -> usize {
        self.histories.len()
    }

    /// Bytes held on the heap, about: the reads, the audiences, the
    /// vectors that hold them and the readers' ids (twice, with the map's
    /// slots). Walks every history and audience: milliseconds at a million
    /// articles.
    pub fn heap_bytes(&self) -> u64 {
        use std::mem::size_of;
        let reads: usize = self.histories.iter().map(Vec::capacity).sum();
        let readers: usize = self.audiences.iter().map(Vec::capacity).sum();
        let ids: usize = self.keys.iter().map(|key| key.len()).sum();
        let vectors =
            (self.histories.capacity() + self.audiences.capacity()) * size_of::<Vec<()>>();
        let keys = self.keys.capacity() * size_of::<Box<str>>()
            + self.reader_ids.capacity() * (size_of::<(Box<str>, u32)>() + 1);
        (reads * size_of::<Read>() + readers * size_of::<Reader>() + 2 * ids + vectors + keys)
            as u64
    }
}

/// Pushes `item`, making room for an eighth more when `list` is full (four
/// at least), not for as much again. Histories and audiences are loaded
/// exactly sized, so a pushed view would double its reader's history and
/// its article's audience, and the allocator keeps the blocks they left: at
/// a million articles, 430 bytes of memory per view recorded, for 20 bytes
/// of data. The floor spares a new reader's first views a reallocation each.
fn push_sparingly<T>(list: &mut Vec<T>, item: T) {
    if list.len() == list.capacity() {
        list.reserve_exact((list.len() / 8).max(4));
    }
    list.push(item);
}

/// The audience of `article`, grown to hold it; `None` for an id no
/// article can have (below zero).
fn audience_mut(audiences: &mut Vec<Vec<Reader>>, article: i32) -> Option<&mut Vec<Reader>> {
    let slot = usize::try_from(article).ok()?;
    if audiences.len() <= slot {
        audiences.resize_with(slot + 1, Vec::new);
    }
    Some(&mut audiences[slot])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(article: i32, at: u32, weight: f32) -> Read {
        Read {
            article,
            at,
            weight,
        }
    }

    #[test]
    fn a_repeat_read_keeps_one_entry_with_the_latest_time() {
        let mut graph = Graph::default();
        assert!(graph.record("r1", 7, 100, 1.0));
        assert!(!graph.record("r1", 7, 50, 2.0));
        assert!(!graph.record("r1", 7, 300, 1.0));
        let reader = graph.reader("r1").unwrap();
        assert_eq!(graph.history(reader), &[read(7, 300, 2.0)]);
        assert_eq!(graph.audience(7).len(), 1);
    }

    #[test]
    fn a_view_recorded_after_loading_adds_little_memory() {
        // Reader 0 has read 80 articles; article 1 has 79 readers.
        let keys: Vec<Box<str>> = (0..80).map(|n| format!("r{n}").into()).collect();
        let events = (0..80)
            .map(|n| (0, read(n + 2, n as u32, 1.0)))
            .chain((1..80).map(|n| (n, read(1, n, 1.0))));
        let mut graph = Graph::build(keys, events);
        let before = graph.heap_bytes();
        assert!(graph.record("r0", 1, 100, 1.0));
        let grown = graph.heap_bytes() - before;
        // An eighth more room in the history and the audience, not as
        // much again (80 reads of 12 bytes, 79 readers of 8).
        assert!(
            grown <= (80 / 8 + 1) * 12 + (79 / 8 + 1) * 8,
            "{grown} bytes"
        );
    }

    #[test]
    fn a_list_grows_by_an_eighth_and_by_four_at_least() {
        let mut list = Vec::new();
        for n in 0..4 {
            push_sparingly(&mut list, n);
            assert_eq!(list.capacity(), 4);
        }
        push_sparingly(&mut list, 4);
        assert_eq!(list.capacity(), 8);
        let mut long: Vec<u32> = (0..80).collect();
        long.shrink_to_fit();
        push_sparingly(&mut long, 80);
        assert_eq!(long.capacity(), 90);
    }

    #[test]
    fn building_at_once_equals_recording_one_by_one() {
        let keys: Vec<Box<str>> = vec!["a".into(), "b".into()];
        let events = [
            (0, read(1, 10, 1.0)),
            (1, read(1, 20, 1.0)),
            (0, read(2, 30, 1.0)),
            (0, read(1, 40, 2.0)),
        ];
        let built = Graph::build(keys.clone(), events);
        let mut recorded = Graph::default();
        for (reader, event) in events {
            recorded.record(
                &keys[reader as usize],
                event.article,
                event.at,
                event.weight,
            );
        }
        for key in ["a", "b"] {
            let mut left = built.history(built.reader(key).unwrap()).to_vec();
            let mut right = recorded.history(recorded.reader(key).unwrap()).to_vec();
            left.sort_by_key(|r| r.article);
            right.sort_by_key(|r| r.article);
            assert_eq!(left, right);
        }
        assert_eq!(built.audience(1).len(), 2);

        // Absorbing a graph built meanwhile adds its events.
        let mut late = Graph::default();
        late.record("c", 2, 50, 1.0);
        late.record("a", 3, 60, 1.0);
        let mut merged = built;
        merged.absorb(late);
        assert_eq!(merged.readers(), 3);
        assert_eq!(merged.audience(2).len(), 2);
        assert_eq!(merged.history(merged.reader("a").unwrap()).len(), 3);
    }
}
