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
/// first word seen for it (without a possessive `'s`).
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
        let signs = ["://", "www.", "WWW.", "pic.twitter.com"];
        if signs.iter().any(|sign| text.contains(sign)) {
            for chunk in text.split_whitespace().filter(|chunk| !is_address(chunk)) {
                self.add_words(chunk, weight, terms);
            }
        } else {
            self.add_words(text, weight, terms);
        }
    }

    fn add_words(&self, text: &str, weight: u32, terms: &mut Terms) {
        for word in text.unicode_words() {
            let mut word = word.to_lowercase();
            // Typeset text writes the apostrophe `’`: `korea’s` is
            // `korea`, as `korea's` is, to the stemmer.
            if word.contains('\u{2019}') {
                word = word.replace('\u{2019}', "'");
            }
            let word = word.trim_matches('\'');
            let word = word.strip_suffix("'s").unwrap_or(word);
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
            if let Entry::Vacant(slot) = terms.spellings.entry(stem) {
                slot.insert(word.to_string());
            }
        }
    }
}

/// True when `chunk` (text between spaces) is a web address, maybe in
/// brackets or after a dash.
fn is_address(chunk: &str) -> bool {
    let chunk = chunk
        .trim_start_matches(|c: char| !c.is_alphanumeric())
        .to_ascii_lowercase();
    chunk.contains("://") || chunk.starts_with("www.") || chunk.starts_with("pic.twitter.com/")
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
            "Dockers cheered (https://t.co/x7Hq pic.twitter.com/Ab12) — see (WWW.example.com/strike)",
            1,
            &mut terms,
        );
        let mut stems: Vec<&str> = terms.counts.keys().map(String::as_str).collect();
        stems.sort_unstable();
        assert_eq!(stems, ["cheer", "docker", "see"]);
    }

    #[test]
    fn a_possessive_is_spelt_without_its_s() {
        let analyzer = Analyzer::default();
        let mut terms = Terms::default();
        analyzer.add("Korea\u{2019}s harbour and Japan's", 1, &mut terms);
        assert_eq!(terms.spellings["korea"], "korea");
        assert_eq!(terms.spellings["japan"], "japan");
    }
}
