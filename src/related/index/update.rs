//! Articles coming and going one at a time: each term's postings kept in
//! impact order and within their bound, and removed articles' postings
//! cleaned up once they are many.

use super::{Document, Index, POSTINGS_KEPT, POSTINGS_PER_TERM, impact_order, is_set, set};

impl Index {
    /// Indexes one article, replacing an earlier version.
    pub fn insert(&mut self, document: Document) {
        self.remove(document.id);
        let counted = self.count(document);
        let slot = self.place(counted);
        // `place` appended the postings; move them to their place.
        let Some(entry) = &self.slots[slot as usize] else {
            return;
        };
        for (term, _) in entry.terms.iter() {
            let postings = &mut self.postings[term as usize];
            let truncated = &mut self.truncated[term as usize];
            if let Some(posting) = postings.pop() {
                let at = postings.partition_point(|other| impact_order(other, &posting).is_lt());
                // Weaker than every kept posting of a truncated term: it
                // belongs among the dropped ones.
                if at < postings.len() || !*truncated {
                    postings.insert(at, posting);
                }
                if postings.len() > POSTINGS_KEPT {
                    postings.pop();
                    *truncated = true;
                }
            }
        }
    }

    /// Drops an article; true if it was indexed.
    pub fn remove(&mut self, id: i32) -> bool {
        let Some(slot) = self.slot_of.remove(&id) else {
            return false;
        };
        set(&mut self.live, slot, false);
        if let Some(entry) = self.slots[slot as usize].take() {
            self.counted -= 1;
            self.total_length -= f64::from(entry.length);
            for (term, weight) in entry.vector() {
                let df = &mut self.document_frequency[term as usize];
                *df = df.saturating_sub(1);
                let kept = self.postings[term as usize]
                    .binary_search_by(|other| impact_order(other, &(slot, weight)))
                    .is_ok();
                self.stale += usize::from(kept);
            }
        }
        if self.stale > 100_000
            && self.stale * 2 > self.postings.iter().map(Vec::len).sum::<usize>()
        {
            self.compact();
        }
        true
    }

    /// Rebuilds the postings without removed articles; a truncated term left
    /// with fewer than are read gets its strongest postings back from the
    /// articles' vectors.
    pub fn compact(&mut self) {
        let live = &self.live;
        let mut short = vec![false; self.postings.len()];
        for (term, postings) in self.postings.iter_mut().enumerate() {
            postings.retain(|(slot, _)| is_set(live, *slot));
            if self.truncated[term] && postings.len() < POSTINGS_PER_TERM {
                short[term] = true;
                postings.clear();
            }
        }
        if short.contains(&true) {
            for (slot, entry) in self.slots.iter().enumerate() {
                let Some(entry) = entry else { continue };
                for (term, weight) in entry.vector() {
                    if short[term as usize] {
                        self.postings[term as usize].push((slot as u32, weight));
                    }
                }
            }
            for (term, postings) in self.postings.iter_mut().enumerate() {
                if short[term] {
                    postings.sort_unstable_by(impact_order);
                    self.truncated[term] = postings.len() > POSTINGS_KEPT;
                    postings.truncate(POSTINGS_KEPT);
                    postings.shrink_to_fit();
                }
            }
        }
        self.stale = 0;
    }
}
