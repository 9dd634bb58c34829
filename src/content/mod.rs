//! Article text: sanitising HTML, rendering Markdown, slugs, plain text,
//! word counts and summaries. Knows nothing about HTTP or SQL.

use std::collections::HashSet;
use std::sync::LazyLock;

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

static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::default();
    builder
        .add_tags(["figure", "figcaption"])
        .link_rel(Some("noopener noreferrer"))
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        // ammonia checks the scheme of `href` and `src` only: a quote's
        // source (`cite`) is kept when it is a web address.
        .attribute_filter(|_, attribute, value| {
            let web =
                || url::Url::parse(value).is_ok_and(|url| matches!(url.scheme(), "http" | "https"));
            (attribute != "cite" || web()).then_some(value.into())
        });
    builder
});

/// Sanitises untrusted HTML: no scripts, no event handlers, no `javascript:`
/// URLs; only a conservative set of formatting tags survives, and no
/// character XML cannot carry (see [`without_unprintable`]).
pub fn sanitize_html(html: &str) -> String {
    let clean = SANITIZER.clean(html).to_string();
    match without_unprintable(&clean) {
        std::borrow::Cow::Borrowed(_) => clean,
        std::borrow::Cow::Owned(printable) => printable,
    }
}

/// Renders Markdown (CommonMark with tables and strikethrough) to sanitised HTML.
pub fn render_markdown(markdown: &str) -> String {
    use pulldown_cmark::{Options, Parser, html};
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let mut out = String::with_capacity(markdown.len() * 5 / 4);
    html::push_html(&mut out, Parser::new_ext(markdown, options));
    sanitize_html(&out)
}

/// Elements that sit inside a line of text: no word break around them.
const INLINE_TAGS: &[&str] = &[
    "a", "abbr", "b", "cite", "code", "del", "em", "i", "ins", "kbd", "mark", "q", "s", "small",
    "span", "strong", "sub", "sup", "u",
];

/// The readable text of sanitised HTML: block tags become spaces, inline tags
/// vanish, entities are decoded.
pub fn plain_text(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut tag: Option<String> = None;
    let mut quote = None;
    for c in html.chars() {
        match (&mut tag, quote) {
            (None, _) if c == '<' => tag = Some(String::new()),
            (None, _) if c.is_control() => text.push(' '),
            (None, _) => text.push(c),
            (Some(_), Some(q)) if c == q => quote = None,
            (Some(_), None) if c == '"' || c == '\'' => quote = Some(c),
            (Some(inside), None) if c == '>' => {
                let name = inside
                    .trim_start_matches('/')
                    .split(|c: char| c.is_whitespace() || c == '/')
                    .next()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                if !INLINE_TAGS.contains(&name.as_str()) {
                    text.push(' ');
                }
                tag = None;
            }
            (Some(inside), _) => inside.push(c),
        }
    }
    let decoded = html_escape::decode_html_entities(&text);
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Number of words in plain text, by Unicode word boundaries (so that each
/// CJK character counts, as readers read them).
pub fn word_count(text: &str) -> usize {
    use unicode_segmentation::UnicodeSegmentation;
    text.unicode_words().count()
}

/// True when a text holds a control character (C0, DEL or C1) other than
/// tab and newlines, or a noncharacter U+FFFE or U+FFFF: nothing a reader
/// should see in a title or a name. A superset of what XML cannot carry
/// (see [`without_unprintable`]).
pub fn has_control(text: &str) -> bool {
    text.chars().any(|c| {
        (c.is_control() && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{fffe}' | '\u{ffff}')
    })
}

/// A character XML 1.0 allows in text: not a C0 control other than tab
/// and newlines, not U+FFFE or U+FFFF (Rust strings hold no surrogates).
fn is_text_char(c: char) -> bool {
    !matches!(c, '\0'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}')
}

/// `text` without the characters XML 1.0 cannot carry (see
/// [`is_text_char`]): a feed with one of them is not XML at all, and no
/// reader can load it. DEL and the C1 controls are valid XML and stay.
pub fn without_unprintable(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().all(is_text_char) {
        text.into()
    } else {
        text.chars()
            .filter(|c| is_text_char(*c))
            .collect::<String>()
            .into()
    }
}

/// Whole minutes to read `words` words, at least one.
pub fn reading_time_minutes(words: usize) -> usize {
    words.div_ceil(WORDS_PER_MINUTE).max(1)
}

/// A summary cut from the start of the text, ending on a sentence or word boundary.
pub fn derive_summary(text: &str) -> String {
    if text.chars().count() <= DERIVED_SUMMARY_MAX {
        return text.to_string();
    }
    let cut: String = text.chars().take(DERIVED_SUMMARY_MAX).collect();
    if let Some(end) = cut.rfind(". ").filter(|&end| end > DERIVED_SUMMARY_MAX / 3) {
        return cut[..=end].to_string();
    }
    match cut.rfind(' ') {
        Some(end) => format!("{}…", cut[..end].trim_end_matches([',', ';', ':'])),
        None => cut,
    }
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

/// Longest slug of a category, tag or author.
pub const MAX_TAXONOMY_SLUG: usize = 100;
/// Longest article slug.
pub const MAX_ARTICLE_SLUG: usize = 200;

/// Why a slug is not acceptable, if it is not.
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
    } else if slug.bytes().all(|b| b.is_ascii_digit()) {
        Some("must contain a letter (numbers address articles by id)".into())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_handlers_and_javascript_urls_are_removed() {
        let clean = sanitize_html(
            r#"<p onclick="x()">Hi<script>alert(1)</script> <a href="javascript:alert(1)">a</a><img src=x onerror=alert(1)></p>"#,
        );
        assert!(!clean.contains("script"), "{clean}");
        assert!(!clean.contains("onclick"), "{clean}");
        assert!(!clean.contains("onerror"), "{clean}");
        assert!(!clean.contains("javascript"), "{clean}");
        assert!(clean.contains("<p>Hi"), "{clean}");
    }

    #[test]
    fn a_quote_keeps_its_source_only_when_it_is_a_web_address() {
        let clean = sanitize_html(r#"<blockquote cite="javascript:alert(1)">q</blockquote>"#);
        assert_eq!(clean, "<blockquote>q</blockquote>");
        let clean = sanitize_html(r#"<q cite="https://example.com/speech">q</q>"#);
        assert_eq!(clean, r#"<q cite="https://example.com/speech">q</q>"#);
    }

    #[test]
    fn characters_xml_cannot_carry_never_reach_a_body() {
        assert_eq!(
            sanitize_html("<p>form\u{c}feed, escape\u{1b}, \u{fffe}end\ttab</p>"),
            "<p>formfeed, escape, end\ttab</p>"
        );
        assert_eq!(render_markdown("one\u{b}two"), "<p>onetwo</p>\n");
        assert!(has_control("title\u{fffe}"));
        assert!(has_control("bell\u{7}"));
        assert!(!has_control("tab\tand\nnewline, é, 東京"));
    }

    #[test]
    fn markdown_is_rendered_then_sanitised() {
        let html = render_markdown("## Heading\n\nSome **bold** text.\n\n<script>x</script>");
        assert!(html.contains("<h2>Heading</h2>"), "{html}");
        assert!(html.contains("<strong>bold</strong>"), "{html}");
        assert!(!html.contains("script"), "{html}");
    }

    #[test]
    fn plain_text_keeps_words_apart_and_decodes_entities() {
        let text =
            plain_text(r#"<p>One&amp;two</p><p title="a>b">three <strong>bold</strong>.</p>"#);
        assert_eq!(text, "One&two three bold.");
        assert_eq!(word_count(&text), 4);
        assert_eq!(plain_text("<p>ding\u{7} dong</p>"), "ding dong");
        assert_eq!(word_count("東京で会議"), 5);
    }

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
        assert!(slug_problem("12345", 20).is_some());
        assert!(slug_problem("much-too-long-for-this", 20).is_some());
    }

    #[test]
    fn derived_summary_ends_on_a_boundary() {
        let text = "First sentence is here. ".repeat(20);
        let summary = derive_summary(&text);
        assert!(summary.ends_with('.'), "{summary}");
        assert!(summary.chars().count() <= DERIVED_SUMMARY_MAX);
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
                    // characters dropped, tabs and newlines anywhere, and a
                    // scheme only where what comes before the first `:` is
                    // one (a letter, then letters, digits, `+`, `-`, `.`);
                    // otherwise the URL is relative, like `%5B:c` or `:`.
                    let value: String = html_escape::decode_html_entities(&value)
                        .trim_start_matches(|c: char| c <= ' ')
                        .chars()
                        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
                        .collect::<String>()
                        .to_ascii_lowercase();
                    let scheme = value.split_once(':').map(|(scheme, _)| scheme).filter(|s| {
                        s.starts_with(|c: char| c.is_ascii_alphabetic())
                            && s.chars()
                                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                    });
                    assert!(
                        scheme.is_none_or(|scheme| ["http", "https", "mailto"].contains(&scheme))
                            || !["href", "src"].contains(&attribute.as_str()),
                        "{attribute}=\"{value}\" survived in {html}"
                    );
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
