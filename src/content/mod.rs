//! Article text: sanitising HTML, rendering Markdown, slugs, plain text,
//! word counts and summaries. Knows nothing about HTTP or SQL.

mod markup;

pub use self::markup::{
    has_control, html_of_text, lead_text, plain_text, render_markdown, sanitize_html,
    without_unprintable,
};

/// Words per minute used for `reading_time_minutes`.
pub const WORDS_PER_MINUTE: usize = 230;
/// Longest slug that is derived from a title.
const DERIVED_SLUG_MAX: usize = 80;
/// Longest summary derived from the body when none is given.
const DERIVED_SUMMARY_MAX: usize = 240;

/// Where an article is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Not public, whatever its `published_at`.
    Draft,
    /// Public once `published_at` has passed.
    Published,
}

impl Status {
    /// The stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Published => "published",
        }
    }

    /// Parses the stored spelling; anything unknown is a draft, never public.
    pub fn from_stored(value: &str) -> Self {
        if value == "published" {
            Self::Published
        } else {
            Self::Draft
        }
    }
}

/// Number of words in plain text, by Unicode word boundaries (so that each
/// CJK character counts, as readers read them).
pub fn word_count(text: &str) -> usize {
    use unicode_segmentation::UnicodeSegmentation;
    text.unicode_words().count()
}

/// Whole minutes to read `words` words, at least one.
pub fn reading_time_minutes(words: usize) -> usize {
    words.div_ceil(WORDS_PER_MINUTE).max(1)
}

/// True when `text` has a word: a letter, in any script. Dashes or a
/// stray number are what an importer leaves where it found no text.
pub fn has_a_word(text: &str) -> bool {
    text.chars().any(char::is_alphabetic)
}

/// The summary of a body of sanitised HTML whose text is `text`: cut from
/// its paragraphs' running text (see [`lead_text`]), or from all of its
/// text when it has none.
pub fn summary_of(body_html: &str, text: &str) -> String {
    let lead = lead_text(body_html);
    derive_summary(if lead.is_empty() { text } else { &lead })
}

/// A summary cut from the start of the text, ending on a sentence or word boundary.
pub fn derive_summary(text: &str) -> String {
    if text.chars().count() <= DERIVED_SUMMARY_MAX {
        return text.to_string();
    }
    let cut: String = text.chars().take(DERIVED_SUMMARY_MAX).collect();
    let last_sentence = sentence_ends(&cut)
        .filter(|&end| cut[..end].chars().count() > DERIVED_SUMMARY_MAX / 3)
        .last();
    if let Some(end) = last_sentence {
        return cut[..end].to_string();
    }
    // A word ends it only past the first third: Chinese with one early
    // space (`iPhone 16发布…`) is cut at the limit instead.
    let word_end = cut
        .rfind(' ')
        .filter(|&end| cut[..end].chars().count() > DERIVED_SUMMARY_MAX / 3);
    match word_end {
        Some(end) => format!("{}…", cut[..end].trim_end_matches([',', ';', ':'])),
        // No word to end on (Chinese or Japanese, say, or one long token).
        None => format!("{cut}…"),
    }
}

/// Where sentences of `text` end, as far as a summary can tell: just past
/// a `.`, `!` or `?` (and a closing quote or bracket) followed by a space
/// and not by a lower-case word (`“Why not?” she asked`), unless the stop
/// ends an abbreviation (`Mr.`, `Gov.`, `U.S.`, `J.`); or just past a
/// full-width `。`, `！` or `？`.
fn sentence_ends(text: &str) -> impl Iterator<Item = usize> + '_ {
    text.char_indices().filter_map(|(at, stop)| {
        // A full-width stop ends a sentence with no space after it.
        if matches!(stop, '。' | '！' | '？') {
            return Some(at + stop.len_utf8());
        }
        if !matches!(stop, '.' | '!' | '?') {
            return None;
        }
        let after = at + stop.len_utf8();
        let closing: usize = text[after..]
            .chars()
            .take_while(|c| matches!(c, '"' | '\'' | '”' | '’' | ')' | '»'))
            .map(char::len_utf8)
            .sum();
        let end = after + closing;
        let next = text[end..].trim_start().chars().next();
        let ends = text[end..].starts_with(' ')
            && !next.is_some_and(char::is_lowercase)
            && !(stop == '.' && abbreviated(&text[..at], &text[end..]));
        ends.then_some(end)
    })
}

/// Words news text abbreviates with a full stop, lower-cased: a stop after
/// one seldom ends a sentence.
const ABBREVIATIONS: [&str; 31] = [
    "adm", "ave", "capt", "cmdr", "co", "col", "corp", "dept", "dr", "etc", "gen", "gov", "hon",
    "inc", "jr", "lt", "ltd", "maj", "messrs", "mr", "mrs", "ms", "mt", "pres", "prof", "rep",
    "rev", "sen", "sgt", "st", "vs",
];
/// Abbreviations only before a number (`No. 10`, `Jan. 5`): `no.` also
/// ends sentences.
const BEFORE_NUMBERS: [&str; 8] = ["aug", "dec", "feb", "jan", "no", "nov", "oct", "sept"];

/// True when the word that `before` ends with, just before a full stop
/// that `after` follows, is an abbreviation: one of [`ABBREVIATIONS`], one
/// of [`BEFORE_NUMBERS`] before a number, or a single letter (an initial,
/// or the last letter of `U.S`).
fn abbreviated(before: &str, after: &str) -> bool {
    let word = before
        .rsplit(|c: char| c.is_whitespace() || matches!(c, '(' | '"' | '“'))
        .next()
        .unwrap_or_default();
    let last = word.rsplit('.').next().unwrap_or_default();
    let mut letters = last.chars();
    let single_letter = letters.next().is_some_and(char::is_alphabetic) && letters.next().is_none();
    let last = last.to_lowercase();
    let number_follows = after.trim_start().starts_with(|c: char| c.is_ascii_digit());
    single_letter
        || ABBREVIATIONS.contains(&last.as_str())
        || number_follows && BEFORE_NUMBERS.contains(&last.as_str())
}

/// A URL slug from a title: lower-case ASCII words joined by `-`, cut at a
/// word boundary. Titles with no letters or digits give an empty slug.
pub fn slugify(title: &str) -> String {
    let slug = slug::slugify(title);
    if slug.len() <= DERIVED_SLUG_MAX {
        return slug;
    }
    let cut = &slug[..DERIVED_SLUG_MAX];
    match cut.rfind('-') {
        Some(end) if end > 0 => cut[..end].to_string(),
        _ => cut.to_string(),
    }
}

/// The slug of a category, tag or author made from its name: as
/// [`slugify`], with a `+` or `#` after a letter or digit spelled out
/// (`plus`, `sharp`), so that `C++`, `C#` and `C`, or `Disney+` and
/// `Disney`, are three tags and two, not one. A `+` or `#` after anything
/// else (a hashtag's, `Arts + Culture`) goes as any other punctuation
/// does. Article slugs keep
/// [`slugify`]'s: a re-import finds a story by the slug of its title.
pub fn name_slug(name: &str) -> String {
    let mut spelled = String::with_capacity(name.len() + 8);
    let mut after_word = false;
    for c in name.chars() {
        match c {
            '+' if after_word => spelled.push_str(" plus "),
            '#' if after_word => spelled.push_str(" sharp "),
            _ => spelled.push(c),
        }
        after_word = c.is_alphanumeric() || (c == '+' && after_word);
    }
    slugify(&spelled)
}

/// Longest slug of a category, tag or author.
pub const MAX_TAXONOMY_SLUG: usize = 100;
/// Longest article slug.
pub const MAX_ARTICLE_SLUG: usize = 200;

/// Why a slug (of a category, tag or author: at most `max` long) is not
/// acceptable, if it is not.
pub fn slug_problem(slug: &str, max: usize) -> Option<String> {
    let well_formed = !slug.is_empty()
        && slug.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    if !well_formed {
        Some("must be lower-case letters and digits in words joined by single hyphens".into())
    } else if slug.len() > max {
        Some(format!("must be at most {max} characters"))
    } else {
        None
    }
}

/// Why an article's slug is not acceptable, if it is not: as
/// [`slug_problem`], and a number, which addresses an article by id, is
/// not one. (A tag, category or author has no id in its URLs: `2026` is
/// a tag's slug as its name makes it.)
pub fn article_slug_problem(slug: &str) -> Option<String> {
    slug_problem(slug, MAX_ARTICLE_SLUG).or_else(|| {
        slug.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| "must contain a letter (numbers address articles by id)".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_time_rounds_up_and_is_never_zero() {
        assert_eq!(reading_time_minutes(0), 1);
        assert_eq!(reading_time_minutes(230), 1);
        assert_eq!(reading_time_minutes(231), 2);
    }

    #[test]
    fn slugs_are_derived_and_checked() {
        assert_eq!(
            slugify("Lavrov thanks North Korea — 'unwavering'"),
            "lavrov-thanks-north-korea-unwavering"
        );
        assert!(slugify(&"word ".repeat(40)).len() <= DERIVED_SLUG_MAX);
        assert_eq!(slug_problem("good-slug-2", 20), None);
        assert!(slug_problem("Bad Slug", 20).is_some());
        assert!(slug_problem("double--hyphen", 20).is_some());
        assert_eq!(slug_problem("12345", 20), None);
        assert!(article_slug_problem("12345").is_some());
        assert_eq!(article_slug_problem("2026-05"), None);
        assert!(slug_problem("much-too-long-for-this", 20).is_some());
    }

    #[test]
    fn a_name_keeps_the_symbols_that_tell_it_apart() {
        for (name, slug) in [
            ("C++", "c-plus-plus"),
            ("C#", "c-sharp"),
            ("C", "c"),
            ("Disney+", "disney-plus"),
            ("Apple TV+ shows", "apple-tv-plus-shows"),
            ("#MeToo", "metoo"),
            ("Issue #5", "issue-5"),
            ("Arts + Culture", "arts-culture"),
            ("Arts & Culture", "arts-culture"),
        ] {
            assert_eq!(name_slug(name), slug, "{name}");
        }
    }

    #[test]
    fn derived_summary_ends_on_a_boundary() {
        let text = "First sentence is here. ".repeat(20);
        let summary = derive_summary(&text);
        assert!(summary.ends_with('.'), "{summary}");
        assert!(summary.chars().count() <= DERIVED_SUMMARY_MAX);
    }

    #[test]
    fn a_summary_of_text_without_spaces_ends_on_a_full_width_stop_or_with_an_ellipsis() {
        let chinese = "这是一个句子。".repeat(60);
        let summary = derive_summary(&chinese);
        assert!(summary.ends_with('。'), "{summary}");
        assert!(summary.chars().count() <= DERIVED_SUMMARY_MAX);
        let token = "abcdefghij".repeat(40);
        let summary = derive_summary(&token);
        assert_eq!(summary, format!("{}…", &token[..DERIVED_SUMMARY_MAX]));
        // One space near the start is no word to end on.
        let text = format!("iPhone 16{}", "发布会".repeat(100));
        let summary = derive_summary(&text);
        assert_eq!(
            summary.chars().count(),
            DERIVED_SUMMARY_MAX + 1,
            "{summary}"
        );
    }

    #[test]
    fn a_derived_summary_does_not_end_on_an_abbreviation() {
        let lead = "The Department of Homeland Security announced new security initiatives on Monday, \
                    after weeks of talks with airlines and airports.";
        for who in [
            " U.S. officials",
            " Mr. Kelly",
            " New Jersey Gov. Chris Christie",
            " St. Louis airport",
        ] {
            let text = format!(
                "{lead}{who} said the rules would take effect within a month and would apply to \
                 every flight that lands here from abroad, whatever its airline."
            );
            let summary = derive_summary(&text);
            assert_eq!(summary, lead, "{who}");
        }
        // A quoted sentence ends with its quote.
        let quoted = format!(
            "The minister told reporters at the harbour on Monday: \"We will be ready for them.\" {}",
            "More words ".repeat(30)
        );
        let summary = derive_summary(&quoted);
        assert!(summary.ends_with("ready for them.\""), "{summary}");
        // A question quoted within a sentence does not end it.
        let asked = "The dockers at the harbour met on Monday to vote on the strike that has shut the port \
                     for a week. “Why should we go back to work now?” the union leader asked the harbour \
                     board at a meeting that ran on late into the night, long past the hour set for it.";
        assert!(
            derive_summary(asked).ends_with("for a week."),
            "{}",
            derive_summary(asked)
        );
        // `no.` ends a sentence unless a number follows.
        let no = format!(
            "The dockers at the harbour were asked on Monday whether they would go back to work, and they said no. {}",
            "More words ".repeat(30)
        );
        assert!(derive_summary(&no).ends_with("said no."));
        let question = format!(
            "Will the strike end before the holidays at the harbour this year, the dockers ask? {}",
            "More words ".repeat(30)
        );
        assert!(derive_summary(&question).ends_with("ask?"));
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        /// Random text mixed with known XSS payloads and HTML and Markdown
        /// syntax, so that generated inputs hit the sanitiser's corners.
        fn hostile() -> impl Strategy<Value = String> {
            let part = prop_oneof![
                any::<String>(),
                "[<>\"'=/a-z :;&#()\\[\\]!*_`-]{0,40}",
                Just("<script>alert(1)</script>".to_string()),
                Just("<img src=x onerror=alert(1)>".to_string()),
                Just("<a href=\"javascript:alert(1)\">x</a>".to_string()),
                Just("<a href=\" JaVaScRiPt:alert(1)\">x</a>".to_string()),
                Just("[x](javascript:alert(1))".to_string()),
                Just("![x](javascript:alert(1))".to_string()),
                Just("<svg onload=alert(1)><circle/></svg>".to_string()),
                Just("<iframe src=\"https://evil.example\"></iframe>".to_string()),
                Just("<style>body{display:none}</style>".to_string()),
                Just("<p style=\"background:url(javascript:alert(1))\">x</p>".to_string()),
                Just("<object data=\"x\"></object>".to_string()),
                Just("<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>".to_string()),
                Just("\n\n```\n<script>\n```\n\n".to_string()),
                Just("<!-- <script> -->".to_string()),
                Just("<img src=a.jpg srcset=\"b.jpg 1x,javascript:alert(1) 2x\">".to_string()),
                Just("<picture><source srcset=\"data:text/html,x 1x\"></picture>".to_string()),
                Just("<a href=\"#top\" id=\"app\">x</a>".to_string()),
            ];
            prop::collection::vec(part, 0..8).prop_map(|parts| parts.concat())
        }

        /// Every tag in sanitised HTML, as (name, [(attribute, value)]).
        /// Sanitised output escapes `<` in text, so each `<` opens a tag.
        fn tags(html: &str) -> Vec<(String, Vec<(String, String)>)> {
            let mut found = Vec::new();
            for piece in html.split('<').skip(1) {
                let inside = piece.split('>').next().unwrap_or_default();
                if inside.starts_with('/') || inside.starts_with('!') {
                    continue;
                }
                let mut rest = inside.trim_end_matches('/');
                let name_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                let name = rest[..name_end].to_ascii_lowercase();
                rest = &rest[name_end..];
                let mut attributes = Vec::new();
                while let Some(eq) = rest.find("=\"") {
                    let attribute = rest[..eq].trim().to_ascii_lowercase();
                    let value_start = eq + 2;
                    let value_end = rest[value_start..]
                        .find('"')
                        .map_or(rest.len(), |end| value_start + end);
                    attributes.push((attribute, rest[value_start..value_end].to_string()));
                    rest = &rest[(value_end + 1).min(rest.len())..];
                }
                found.push((name, attributes));
            }
            found
        }

        /// The scheme of an address, if it has one: what comes before the
        /// first `:`, when that is a letter, then letters, digits, `+`, `-`
        /// or `.`; otherwise the address is relative, like `%5B:c` or `:`.
        fn scheme(address: &str) -> Option<&str> {
            let (scheme, _) = address.split_once(':')?;
            let valid = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
            valid.then_some(scheme)
        }

        fn assert_safe(html: &str) {
            for (name, attributes) in tags(html) {
                assert!(
                    ![
                        "script", "iframe", "svg", "style", "object", "embed", "math"
                    ]
                    .contains(&name.as_str()),
                    "<{name}> survived in {html}"
                );
                for (attribute, value) in attributes {
                    assert!(
                        !attribute.starts_with("on"),
                        "{attribute} survived in {html}"
                    );
                    assert_ne!(attribute, "style", "style survived in {html}");
                    // As a browser reads a URL: leading spaces and control
                    // characters dropped, tabs and newlines anywhere.
                    let value: String = html_escape::decode_html_entities(&value)
                        .trim_start_matches(|c: char| c <= ' ')
                        .chars()
                        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
                        .collect::<String>()
                        .to_ascii_lowercase();
                    // A `srcset` holds addresses and their sizes, apart by
                    // spaces and commas: each is checked as an address.
                    let addresses: Vec<&str> = match attribute.as_str() {
                        "href" | "src" => vec![&value],
                        "srcset" => value.split([' ', ',']).collect(),
                        _ => vec![],
                    };
                    for address in addresses {
                        assert!(
                            scheme(address)
                                .is_none_or(|s| ["http", "https", "mailto"].contains(&s)),
                            "{attribute}=\"{value}\" survived in {html}"
                        );
                    }
                }
            }
        }

        #[test]
        fn the_checker_catches_what_it_looks_for() {
            for unsafe_html in [
                "<script>alert(1)</script>",
                "<img src=\"x\" onerror=\"alert(1)\">",
                "<a href=\"javascript:alert(1)\">x</a>",
                "<a href=\" &#106;avascript:alert(1)\">x</a>",
                "<a href=\"java&#9;script:alert(1)\">x</a>",
                "<a href=\"\x01data:text/html,x\">x</a>",
                "<p style=\"color: red\">x</p>",
                "<img srcset=\"a.jpg 1x,javascript:alert(1) 2x\">",
            ] {
                let caught = std::panic::catch_unwind(|| assert_safe(unsafe_html));
                assert!(caught.is_err(), "{unsafe_html} passed the check");
            }
            assert_safe(
                "<p><a href=\"https://example.com/a:b\" rel=\"noopener\">x</a> 1 &lt; 2</p>",
            );
            // Found by the property below: a link to `:` is relative.
            assert_safe(&render_markdown("[](:)"));
            // Not schemes: relative URLs with a `:` further on.
            assert_safe("<a href=\"%5B:c\">x</a><a href=\":\">y</a><a href=\"/a:b\">z</a>");
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn sanitised_html_keeps_no_script_handler_or_unsafe_url(input in hostile()) {
                assert_safe(&sanitize_html(&input));
            }

            #[test]
            fn rendered_markdown_keeps_no_script_handler_or_unsafe_url(input in hostile()) {
                assert_safe(&render_markdown(&input));
            }

            #[test]
            fn text_helpers_take_any_input(input in hostile()) {
                let text = plain_text(&sanitize_html(&input));
                prop_assert!(!text.contains("<script"));
                let summary = derive_summary(&text);
                prop_assert!(summary.chars().count() <= DERIVED_SUMMARY_MAX + 1);
                let slug = slugify(&input);
                // Empty (no letters or digits) and all-digit slugs are
                // refused by the caller; any other is a valid slug.
                let numeric = slug.bytes().all(|b| b.is_ascii_digit());
                prop_assert!(numeric || slug_problem(&slug, MAX_ARTICLE_SLUG).is_none(), "{slug}");
                let _ = word_count(&text);
                let _ = has_control(&input);
            }
        }
    }
}
