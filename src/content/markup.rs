//! HTML in and out: sanitising what editors send, rendering Markdown,
//! the plain text of a body, and the characters a text may hold.

use std::collections::HashSet;
use std::sync::LazyLock;

/// What every `id` in a body starts with, and every link to one from within
/// it: a body's `id="search"` or `id="main"` would otherwise clash with the
/// ids of the page it is shown in, or stand for one in its scripts.
pub const BODY_ID_PREFIX: &str = "body-";

static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::default();
    builder
        .add_tags(["figure", "figcaption", "picture", "source"])
        // Anchors to link to (a footnote, a section), prefixed.
        .add_generic_attributes(["id"])
        .id_prefix(Some(BODY_ID_PREFIX))
        // A date as machines read it, and an image the browser may load
        // when it comes into view, at the size the screen needs.
        .add_tag_attributes("time", ["datetime"])
        .add_tag_attributes("img", ["loading", "srcset", "sizes"])
        .add_tag_attributes(
            "source",
            ["srcset", "sizes", "media", "type", "width", "height"],
        )
        .link_rel(Some("noopener noreferrer"))
        // `tel:` for a newsroom's tip line, tapped on a phone.
        .url_schemes(HashSet::from(["http", "https", "mailto", "tel"]))
        // ammonia checks the scheme of `href` and `src` only: a quote's
        // source (`cite`) is kept when it is a web address, and a set of
        // image sources when each is one or a relative address.
        .attribute_filter(|_, attribute, value| match attribute {
            "cite" => is_web_address(value).then_some(value.into()),
            "srcset" => image_candidates(value)
                .all(|url| is_web_address(url) || is_relative(url))
                .then_some(value.into()),
            "href" => Some(within_body(value).map_or(value.into(), Into::into)),
            _ => Some(value.into()),
        });
    builder
});

fn is_web_address(value: &str) -> bool {
    url::Url::parse(value).is_ok_and(|url| matches!(url.scheme(), "http" | "https"))
}

fn is_relative(value: &str) -> bool {
    url::Url::parse(value) == Err(url::ParseError::RelativeUrlWithoutBase)
}

/// A link to an element of the body (`#notes`) as its prefixed id has it
/// (`#body-notes`); `None` for any other link, or one that has it already.
fn within_body(href: &str) -> Option<String> {
    // Spaces around a URL are not part of it, to a browser.
    let fragment = href.trim().strip_prefix('#').filter(|id| !id.is_empty())?;
    (!fragment.starts_with(BODY_ID_PREFIX)).then(|| format!("#{BODY_ID_PREFIX}{fragment}"))
}

/// The addresses of a `srcset` (`a.jpg 1x, b.jpg 2x`), as the HTML
/// standard splits it: an address runs to the next space and may hold
/// commas (`w_400,c_fill`), and a comma after its descriptors ends it.
fn image_candidates(srcset: &str) -> impl Iterator<Item = &str> {
    let mut rest = srcset;
    std::iter::from_fn(move || {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == ',');
        if rest.is_empty() {
            return None;
        }
        let end = rest
            .find(|c: char| c.is_ascii_whitespace())
            .unwrap_or(rest.len());
        let (url, after) = rest.split_at(end);
        rest = match url.strip_suffix(',') {
            Some(_) => after,
            None => after.split_once(',').map_or("", |(_, next)| next),
        };
        Some(url.trim_end_matches(','))
    })
}

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

/// Plain text as HTML: each run of lines between blank lines a paragraph,
/// a line break within one kept, every `<` and `&` escaped.
pub fn html_of_text(text: &str) -> String {
    let mut html = String::with_capacity(text.len() + 16);
    let mut paragraph: Vec<&str> = Vec::new();
    for line in text.lines().map(str::trim).chain([""]) {
        if !line.is_empty() {
            paragraph.push(line);
        } else if !paragraph.is_empty() {
            html.push_str("<p>");
            for (i, line) in paragraph.drain(..).enumerate() {
                if i > 0 {
                    html.push_str("<br>");
                }
                html.push_str(&html_escape::encode_text(line));
            }
            html.push_str("</p>");
        }
    }
    html
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
    walk(html, |part| match part {
        Part::Text(c) => text.push(c),
        Part::Block { .. } => text.push(' '),
    });
    readable(&text)
}

/// Elements whose text is not the story's running text: a photo's caption
/// and credit, headings, tables, lists, quotes set apart, code.
const ASIDE_TAGS: &[&str] = &[
    "figure",
    "figcaption",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "ul",
    "ol",
    "dl",
    "blockquote",
    "pre",
    "aside",
];

/// The text of sanitised HTML's paragraphs outside [`ASIDE_TAGS`], as
/// [`plain_text`] reads it: what a summary is made of, so that one does not
/// open with a photo credit or a subheading. Empty when there is none.
pub fn lead_text(html: &str) -> String {
    let mut text = String::new();
    let (mut aside, mut paragraph) = (0usize, 0usize);
    walk(html, |part| match part {
        Part::Text(c) if aside == 0 && paragraph > 0 => text.push(c),
        Part::Text(_) => {}
        Part::Block { name, closing } => {
            let depth = match name {
                "p" => &mut paragraph,
                _ if ASIDE_TAGS.contains(&name) => &mut aside,
                _ => return text.push(' '),
            };
            *depth = if closing {
                depth.saturating_sub(1)
            } else {
                *depth + 1
            };
            text.push(' ');
        }
    });
    readable(&text)
}

/// What [`walk`] finds in HTML.
enum Part<'a> {
    /// A character outside tags (a control character as a space).
    Text(char),
    /// A tag that is not inline: its lower-case name, and whether it closes.
    Block { name: &'a str, closing: bool },
}

/// Walks sanitised HTML, telling `found` each [`Part`] in order.
fn walk(html: &str, mut found: impl FnMut(Part<'_>)) {
    let mut tag: Option<String> = None;
    let mut quote = None;
    for c in html.chars() {
        match (&mut tag, quote) {
            (None, _) if c == '<' => tag = Some(String::new()),
            (None, _) if c.is_control() => found(Part::Text(' ')),
            (None, _) => found(Part::Text(c)),
            (Some(_), Some(q)) if c == q => quote = None,
            (Some(_), None) if c == '"' || c == '\'' => quote = Some(c),
            (Some(inside), None) if c == '>' => {
                let closing = inside.starts_with('/');
                let name = inside
                    .trim_start_matches('/')
                    .split(|c: char| c.is_whitespace() || c == '/')
                    .next()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                if !INLINE_TAGS.contains(&name.as_str()) {
                    found(Part::Block {
                        name: &name,
                        closing,
                    });
                }
                tag = None;
            }
            (Some(inside), _) => inside.push(c),
        }
    }
}

/// Text with its entities decoded and each run of whitespace one space.
fn readable(text: &str) -> String {
    let decoded = html_escape::decode_html_entities(text);
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
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

/// `text` without the characters XML 1.0 cannot carry: C0 controls other
/// than tab and newlines (a vertical tab or form feed becomes a space),
/// U+FFFE and U+FFFF. A feed with one of them is not
/// XML at all, and no reader can load it. DEL and the C1 controls are
/// valid XML and stay.
pub fn without_unprintable(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().all(is_text_char) {
        text.into()
    } else {
        // A vertical tab or form feed parts words: it becomes a space.
        text.chars()
            .filter_map(|c| match c {
                c if is_text_char(c) => Some(c),
                c if c.is_whitespace() => Some(' '),
                _ => None,
            })
            .collect::<String>()
            .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::word_count;

    /// What a story's markup needs survives: a phone link, a machine date,
    /// a lazily loaded image; a script in an image's `loading` does not.
    #[test]
    fn phone_links_dates_and_lazy_images_are_kept() {
        let html = sanitize_html(
            "<p><a href=\"tel:+441234567890\">Call the tip line</a> \
             <time datetime=\"2026-01-05T09:00:00Z\">Monday</time></p>\
             <img src=\"https://img.example.com/a.jpg\" loading=\"lazy\" onload=\"x()\">",
        );
        assert!(html.contains(r#"href="tel:+441234567890""#), "{html}");
        assert!(
            html.contains(r#"<time datetime="2026-01-05T09:00:00Z">"#),
            "{html}"
        );
        assert!(html.contains(r#"loading="lazy""#), "{html}");
        assert!(!html.contains("onload"), "{html}");
    }

    /// A responsive image keeps its sources, whichever address form a
    /// newsroom's image service uses (commas in a path included), and a set
    /// with one address that is not a web address or a relative one is
    /// dropped whole, as `src` would be.
    #[test]
    fn responsive_images_keep_their_sources() {
        let picture = "<picture>\
            <source srcset=\"https://img.example.com/a-800.webp 800w, https://img.example.com/a-400.webp 400w\" \
              sizes=\"(max-width: 600px) 100vw, 600px\" media=\"(min-width: 400px)\" type=\"image/webp\">\
            <img src=\"https://img.example.com/a.jpg\" alt=\"The harbour\" \
              srcset=\"https://res.example.com/w_400,c_fill/a.jpg 400w,/img/a-800.jpg 800w\" sizes=\"600px\">\
            </picture>";
        let html = sanitize_html(picture);
        for kept in [
            r#"<picture><source srcset="https://img.example.com/a-800.webp 800w, https://img.example.com/a-400.webp 400w""#,
            r#"sizes="(max-width: 600px) 100vw, 600px" media="(min-width: 400px)" type="image/webp">"#,
            r#"srcset="https://res.example.com/w_400,c_fill/a.jpg 400w,/img/a-800.jpg 800w" sizes="600px">"#,
        ] {
            assert!(html.contains(kept), "{kept} lost from {html}");
        }
        for unsafe_set in [
            "a.jpg 1x,javascript:alert(1) 2x",
            "data:image/png;base64,iVBOR 1x",
            "https://img.example.com/a.jpg 1x, javascript:alert(1),",
        ] {
            let html = sanitize_html(&format!(r#"<img src="a.jpg" srcset="{unsafe_set}">"#));
            assert_eq!(html, r#"<img src="a.jpg">"#);
        }
    }

    /// Anchors in a body are kept under a prefix, so that they cannot take
    /// the place of the page's own, and its links to them follow.
    #[test]
    fn ids_are_prefixed_and_links_to_them_follow() {
        let html = sanitize_html(
            "<h2 id=\"next\">Next</h2><p id=\"search\">See <a href=\"#next\">below</a>, \
             <a href=\"#\">the top</a> or <a href=\"https://example.com/#next\">there</a>.</p>",
        );
        assert_eq!(
            html,
            "<h2 id=\"body-next\">Next</h2><p id=\"body-search\">See \
             <a href=\"#body-next\" rel=\"noopener noreferrer\">below</a>, \
             <a href=\"#\" rel=\"noopener noreferrer\">the top</a> or \
             <a href=\"https://example.com/#next\" rel=\"noopener noreferrer\">there</a>.</p>"
        );
        // An export imported again keeps them as they are.
        assert_eq!(sanitize_html(&html), html);
    }

    /// A summary is made of the story's paragraphs: not a photo's credit,
    /// a subheading, a list or a table.
    #[test]
    fn the_lead_text_is_the_running_text_of_paragraphs() {
        let body = sanitize_html(
            "<figure><img src=\"https://img.example.com/a.jpg\" alt=\"\">\
             <figcaption>Photo: Reuters</figcaption></figure>\
             <p>The council voted on <b>Tuesday</b>.</p><h2>What happens next</h2>\
             <ul><li>Item one</li></ul><table><tr><td>Cell</td></tr></table>\
             <blockquote><p>A quote set apart.</p></blockquote><p>Work begins in May.</p>",
        );
        assert_eq!(
            lead_text(&body),
            "The council voted on Tuesday. Work begins in May."
        );
        assert_eq!(
            lead_text("<h2>Only a heading</h2><ul><li>and a list</li></ul>"),
            ""
        );
        assert_eq!(
            crate::content::summary_of("<h2>Only a heading</h2>", "Only a heading"),
            "Only a heading"
        );
    }

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
            "<p>form feed, escape, end\ttab</p>"
        );
        assert_eq!(render_markdown("one\u{b}two"), "<p>one two</p>\n");
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
}
