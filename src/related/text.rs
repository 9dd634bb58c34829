//! Turning English text into index terms: words, lowercased, without stop
//! words and numbers, reduced to their stems (Snowball's English stemmer).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use rust_stemmers::{Algorithm, Stemmer};
use unicode_segmentation::UnicodeSegmentation;

/// Splits, filters and stems text; also remembers one readable spelling of
/// each stem, so that `reasons` can show words rather than stems.
pub struct Analyzer {
    stemmer: Stemmer,
    stop_words: HashSet<String>,
}

impl Default for Analyzer {
    fn default() -> Self {
        Self {
            stemmer: Stemmer::create(Algorithm::English),
            stop_words: stop_words::get(stop_words::Language::English)
                .iter()
                .map(|word| word.to_string())
                .collect(),
        }
    }
}

/// The terms of a text: each stem with how often it occurs, and the
/// plainest word seen for it (see [`plainer`]).
#[derive(Debug, Default)]
pub struct Terms {
    pub counts: HashMap<String, u32>,
    pub spellings: HashMap<String, String>,
}

impl Analyzer {
    /// Adds the terms of `text` to `terms`, each occurrence counting
    /// `weight`. Web addresses are left out: `https`, `t.co` and
    /// `pic.twitter.com` are in every story that quotes a tweet, and tell
    /// nothing of what it is about.
    pub fn add(&self, text: &str, weight: u32, terms: &mut Terms) {
        if text.contains("://") || text.contains("www.") || text.contains("pic.twitter.com") {
            for chunk in text.split_whitespace().filter(|chunk| !is_address(chunk)) {
                self.add_words(chunk, weight, terms);
            }
        } else {
            self.add_words(text, weight, terms);
        }
    }

    fn add_words(&self, text: &str, weight: u32, terms: &mut Terms) {
        for word in text.unicode_words() {
            let word = word.to_lowercase();
            let word = word.trim_matches('\'');
            if word.chars().count() < 2
                || word.chars().any(|c| c.is_numeric())
                || self.stop_words.contains(word)
            {
                continue;
            }
            let stem = self.stemmer.stem(word).into_owned();
            if stem.chars().count() < 2 || self.stop_words.contains(&stem) {
                continue;
            }
            *terms.counts.entry(stem.clone()).or_default() += weight;
            let spelling = ["'s", "\u{2019}s"]
                .iter()
                .find_map(|possessive| word.strip_suffix(possessive))
                .unwrap_or(word);
            match terms.spellings.entry(stem) {
                Entry::Occupied(mut kept) if plainer(spelling, kept.get()) => {
                    kept.insert(spelling.to_string());
                }
                Entry::Occupied(_) => {}
                Entry::Vacant(slot) => {
                    slot.insert(spelling.to_string());
                }
            }
        }
    }
}

/// True when `chunk` (text between spaces) is a web address.
fn is_address(chunk: &str) -> bool {
    chunk.contains("://") || chunk.starts_with("www.") || chunk.starts_with("pic.twitter.com/")
}

/// True when `word` reads better than `kept` as the word shown for their
/// stem: shorter, the plainest form (`hospital` rather than `hospitality`,
/// `murder` rather than `murderous`, whichever an index met first), then
/// first in alphabetical order, so that the word never depends on the
/// order articles were read in.
pub fn plainer(word: &str, kept: &str) -> bool {
    (word.chars().count(), word) < (kept.chars().count(), kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_drops_stop_words_and_numbers() {
        let analyzer = Analyzer::default();
        let mut terms = Terms::default();
        analyzer.add(
            "The floods were flooding 12 harbours in 2024",
            1,
            &mut terms,
        );
        assert_eq!(terms.counts.get("flood"), Some(&2));
        assert_eq!(terms.counts.get("harbour"), Some(&1));
        assert!(!terms.counts.contains_key("the"));
        assert!(!terms.counts.contains_key("12"));
        assert_eq!(terms.spellings["flood"], "floods");
    }

    #[test]
    fn web_addresses_are_no_terms() {
        let analyzer = Analyzer::default();
        let mut terms = Terms::default();
        analyzer.add(
            "Dockers cheered (https://t.co/x7Hq pic.twitter.com/Ab12) — see www.example.com/strike",
            1,
            &mut terms,
        );
        let mut stems: Vec<&str> = terms.counts.keys().map(String::as_str).collect();
        stems.sort_unstable();
        assert_eq!(stems, ["cheer", "docker", "see"]);
    }

    #[test]
    fn a_stem_is_shown_as_its_plainest_word() {
        let analyzer = Analyzer::default();
        let mut terms = Terms::default();
        analyzer.add(
            "Hospitality workers protested at Korea's murderous hospital; the hospital's protest went on.",
            1,
            &mut terms,
        );
        let spelling = |word: &str| &terms.spellings[&analyzer.stemmer.stem(word).into_owned()];
        assert_eq!(spelling("hospital"), "hospital");
        assert_eq!(spelling("protest"), "protest");
        assert_eq!(spelling("korea"), "korea");
        assert_eq!(spelling("murderous"), "murderous", "the only word seen");
    }
}
