//! What editors send: the article input (create, replace, bulk lines) and the
//! patch, and their validation into a store write.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use utoipa::ToSchema;

use super::articles::ArticleStatus;
use super::input::Checked;
use super::time;
use crate::content::{self, Status};
use crate::db::article_writes::{ArticleWrite, PublishTime, SlugChoice};
use crate::error::{FieldError, Location};

mod patch;
pub use self::patch::ArticlePatch;

/// Longest title accepted.
pub const MAX_TITLE: usize = 300;
/// Longest summary accepted.
pub const MAX_SUMMARY: usize = 1000;
/// Largest body accepted (HTML or Markdown), in bytes.
pub const MAX_BODY: usize = 512 * 1024;
/// Longest dateline accepted.
pub const MAX_DATELINE: usize = 100;
/// Longest source accepted.
pub const MAX_SOURCE: usize = 200;
/// Longest image URL accepted.
pub const MAX_IMAGE_URL: usize = 2048;
/// Most tags on one article.
pub const MAX_TAGS: usize = 20;
/// Longest tag (slug or name) accepted.
pub const MAX_TAG: usize = super::input::MAX_NAME;
/// Most old slugs one input may give.
const MAX_OLD_SLUGS: usize = 100;

/// An article as editors send it to create or replace one, and as each line
/// of a bulk import. Unknown fields are rejected.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "title": "Harbour strike enters its second week",
    "summary": "Dock workers in Port Avel extended their walkout as talks stalled.",
    "body_markdown": "Talks between the union and the port authority broke off on **Tuesday**.",
    "dateline": "ROTTERDAM",
    "source": "Frontpage Wire",
    "category": "business",
    "tags": ["Port strike", "shipping"],
    "author": "mara-ellison",
    "status": "published",
    "published_at": "2026-11-20T08:30:00Z"
}))]
pub struct ArticleInput {
    /// URL slug; derived from the title when absent.
    #[schema(
        pattern = "^([a-z0-9]*[a-z][a-z0-9]*|[a-z0-9]+(-[a-z0-9]+)+)$",
        max_length = 200
    )]
    pub slug: Option<String>,
    /// Headline, 1 to 300 characters.
    // Missing reads as empty, so that validation names it with the rest.
    #[serde(default)]
    #[schema(required = true, min_length = 1, max_length = 300)]
    pub title: String,
    /// Teaser, plain text up to 1000 characters; when absent, cut from the
    /// start of the body's paragraphs (not its captions, headings, lists or
    /// tables), and again whenever the body changes.
    #[schema(max_length = 1000)]
    pub summary: Option<String>,
    /// Body as HTML, sanitised on the way in: at most 512 KiB once
    /// sanitised (the request, at most 1 MiB), with at least one word.
    /// Give this or `body_markdown`.
    pub body_html: Option<String>,
    /// Body as Markdown, rendered as HTML and sanitised: at most 512 KiB
    /// as HTML (the request, at most 1 MiB). Give this or `body_html`.
    pub body_markdown: Option<String>,
    /// Where the story was filed, e.g. `LONDON` (up to 100 characters).
    #[schema(max_length = 100)]
    pub dateline: Option<String>,
    /// Who supplied it, e.g. a wire service (up to 200 characters).
    #[schema(max_length = 200)]
    pub source: Option<String>,
    /// Lead image, an absolute http(s) URL (up to 2048 characters), stored
    /// in its standard form: spaces, quotes, angle brackets and characters
    /// beyond ASCII percent-encoded.
    #[schema(format = "uri", max_length = 2048)]
    pub image_url: Option<String>,
    /// Category slug; the category must exist.
    #[serde(default)]
    #[schema(
        required = true,
        pattern = "^[a-z0-9]+(-[a-z0-9]+)*$",
        max_length = 100
    )]
    pub category: String,
    /// Tag slugs or names (up to 20, each up to 100 characters): a tag is
    /// found by its slug, else by its name (ignoring ASCII case); unknown
    /// tags are created.
    #[serde(default)]
    #[schema(max_items = 20)]
    pub tags: Vec<String>,
    /// Author slug; the author must exist.
    #[schema(pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 100)]
    pub author: Option<String>,
    /// Slugs the article had before, as an export gives them or as another
    /// site's addresses were: a link made with one is sent on to the article
    /// (308). Added to those it has (up to 100 given at once); none may be
    /// another article's slug now. Each is an article slug, as `slug` is.
    #[serde(default)]
    #[schema(max_items = 100, example = json!(["harbour-strike-enters-second-week"]))]
    pub old_slugs: Vec<String>,
    /// `draft` (the default) or `published`.
    #[schema(value_type = Option<ArticleStatus>)]
    pub status: Option<Checked<ArticleStatus>>,
    /// When it goes public (RFC 3339). A future time schedules it; when
    /// absent, publishing uses the current time.
    #[serde(default, deserialize_with = "time::checked")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub published_at: Option<time::CheckedTime>,
    /// The stored body, sent back by a patch that does not change it: it
    /// was taken once, so a rule added since (a body needs a word) does not
    /// refuse an edit of the title or the status.
    #[serde(skip)]
    pub body_kept: bool,
}

/// Collects the problems of one input.
struct Checks(Vec<FieldError>);

impl Checks {
    fn fail(&mut self, name: impl Into<String>, detail: impl Into<String>) {
        self.0.push(FieldError::new(Location::Body, name, detail));
    }

    /// A trimmed optional text of at most `max` characters; empty means absent.
    fn text(&mut self, name: &str, value: Option<String>, max: usize) -> Option<String> {
        let value = value
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())?;
        if value.chars().count() > max {
            self.fail(name, format!("must be at most {max} characters"));
        }
        if content::has_control(&value) {
            self.fail(name, "must not contain control characters");
        }
        Some(value)
    }

    fn slug(&mut self, name: &str, value: &str, max: usize) {
        if let Some(problem) = content::slug_problem(value, max) {
            self.fail(name, problem);
        }
    }

    /// The slug given, else the one derived from `title`.
    fn slug_choice(&mut self, given: Option<String>, title: &str) -> SlugChoice {
        match given
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
        {
            Some(slug) => {
                if let Some(problem) = content::article_slug_problem(&slug) {
                    self.fail("slug", problem);
                }
                SlugChoice::Given(slug)
            }
            None => {
                let slug = derived_slug(title);
                if slug.is_empty() && !title.is_empty() {
                    self.fail(
                        "title",
                        "must contain a letter or digit (the slug is derived from it)",
                    );
                }
                SlugChoice::Derived(slug)
            }
        }
    }

    /// The body as sanitised HTML, from exactly one of `html` and
    /// `markdown`, and its plain text, which must have a word (unless the
    /// body is the one `kept`).
    fn body(
        &mut self,
        html: Option<String>,
        markdown: Option<String>,
        kept: bool,
    ) -> (String, String) {
        let field = if markdown.is_some() {
            "body_markdown"
        } else {
            "body_html"
        };
        let body_html = match (html, markdown) {
            (Some(_), Some(_)) => {
                self.fail(
                    "body_markdown",
                    "give either body_html or body_markdown, not both",
                );
                return (String::new(), String::new());
            }
            (None, None) => {
                self.fail("body_html", "is required (or give body_markdown)");
                return (String::new(), String::new());
            }
            (Some(html), None) => content::sanitize_html(&html),
            (None, Some(markdown)) => content::render_markdown(&markdown),
        };
        // What is stored is what is limited: sanitising can grow a body
        // (`&` is written `&amp;`) or shrink it (an editor's pasted Word
        // markup), and a body stored over the limit would be refused when
        // an export of it is imported, or a client sends it back.
        if body_html.len() > MAX_BODY {
            let made = if field == "body_markdown" {
                "rendered as HTML"
            } else {
                "sanitised"
            };
            self.fail(
                field,
                format!(
                    "must be at most {MAX_BODY} bytes once {made} (this one is {} bytes)",
                    body_html.len()
                ),
            );
            return (String::new(), String::new());
        }
        let text = content::plain_text(&body_html);
        if text.is_empty() || !(kept || content::has_a_word(&text)) {
            self.fail(field, "has no words once sanitised");
        }
        (body_html, text)
    }

    /// An optional absolute http or https URL, kept in its standard form
    /// (WHATWG's serialisation: spaces, quotes and angle brackets, and
    /// characters beyond ASCII, percent-encoded; a host in punycode), which
    /// feeds and `<img src>` take as it is. An earlier version stored URLs
    /// as given: sent back by a patch, they are put in this form too.
    fn image_url(&mut self, value: Option<String>) -> Option<String> {
        let url = self.text("image_url", value, MAX_IMAGE_URL)?;
        let standard = url::Url::parse(&url)
            .ok()
            .filter(|parsed| matches!(parsed.scheme(), "http" | "https"))
            .filter(|parsed| parsed.host_str().is_some_and(|host| !host.is_empty()))
            .map(String::from);
        match standard {
            Some(standard) if standard.chars().count() > MAX_IMAGE_URL => {
                self.fail(
                    "image_url",
                    format!("must be at most {MAX_IMAGE_URL} characters once percent-encoded"),
                );
                Some(url)
            }
            Some(standard) => Some(standard),
            None => {
                self.fail(
                    "image_url",
                    "must be an absolute http or https URL, such as https://images.example.com/lead.jpg",
                );
                Some(url)
            }
        }
    }

    /// The old slugs given, each once and none the article's own.
    fn old_slugs(&mut self, given: Vec<String>, slug: &SlugChoice) -> Vec<String> {
        if given.len() > MAX_OLD_SLUGS {
            self.fail(
                "old_slugs",
                format!("must have at most {MAX_OLD_SLUGS} slugs"),
            );
            return Vec::new();
        }
        let mut old_slugs: Vec<String> = Vec::new();
        for (i, old) in given.into_iter().enumerate() {
            let old = old.trim().to_string();
            if let Some(problem) = content::article_slug_problem(&old) {
                self.fail(format!("old_slugs[{i}]"), problem);
            } else if old != slug.as_str() && !old_slugs.contains(&old) {
                old_slugs.push(old);
            }
        }
        old_slugs
    }

    /// The tags as `(slug, name)`, each once, in the order given.
    fn tags(&mut self, given: Vec<String>) -> Vec<(String, String)> {
        let mut tags: Vec<(String, String)> = Vec::new();
        for (i, tag) in given.into_iter().enumerate() {
            if tags.len() > MAX_TAGS {
                break;
            }
            match tag_of(&tag) {
                None => self.fail(
                    format!("tags[{i}]"),
                    format!("must have a letter or digit, at most {MAX_TAG} characters and no control characters"),
                ),
                Some((slug, name)) => {
                    if !tags.iter().any(|(s, _)| *s == slug) {
                        tags.push((slug, name));
                    }
                }
            }
        }
        // Counted once each: the same tag given twice is one tag.
        if tags.len() > MAX_TAGS {
            self.fail("tags", format!("must have at most {MAX_TAGS} tags"));
        }
        tags
    }
}

/// The tag `given` names, as `(slug, name)`, if it can be one: a letter or
/// digit, at most [`MAX_TAG`] characters and no control characters.
pub fn tag_of(given: &str) -> Option<(String, String)> {
    let name = given.trim().to_string();
    // A tag's own slug is kept whole: `slugify` shortens what it derives
    // to 80 characters, and `POST /tags` takes slugs up to 100, which a
    // patch (sending the article's tags back) would otherwise move to a
    // new, shortened tag.
    let slug = match content::slug_problem(&name, content::MAX_TAXONOMY_SLUG) {
        None => name.clone(),
        Some(_) => content::name_slug(&name),
    };
    let fits = !slug.is_empty() && name.chars().count() <= MAX_TAG && !content::has_control(&name);
    fits.then_some((slug, name))
}

/// A slug from a title that can never be mistaken for an id.
fn derived_slug(title: &str) -> String {
    let slug = content::slugify(title);
    if slug.bytes().all(|b| b.is_ascii_digit()) && !slug.is_empty() {
        format!("article-{slug}")
    } else {
        slug
    }
}

fn truncate_to_seconds(at: DateTime<Utc>) -> NaiveDateTime {
    DateTime::from_timestamp(at.timestamp(), 0)
        .unwrap_or(at)
        .naive_utc()
}

impl ArticleInput {
    /// What [`ArticleInput::validate`] finds wrong with it now, if anything
    /// (see [`crate::api::extract::parse_json_checked`]).
    pub fn problems(self) -> Vec<FieldError> {
        self.validate(crate::db::now()).err().unwrap_or_default()
    }

    /// Checks every field and prepares the write: sanitises the body, counts
    /// words, derives the slug and summary. Returns every problem at once.
    pub fn validate(self, now: NaiveDateTime) -> Result<ArticleWrite, Vec<FieldError>> {
        let mut checks = Checks(Vec::new());
        let title = checks
            .text("title", Some(self.title), MAX_TITLE)
            .unwrap_or_default();
        if title.is_empty() {
            checks.fail("title", "must not be empty");
        }
        let slug = checks.slug_choice(self.slug, &title);
        let (body_html, text) = checks.body(self.body_html, self.body_markdown, self.body_kept);
        let given = checks.text("summary", self.summary, MAX_SUMMARY);
        let summary_derived = given.is_none();
        let summary = given.unwrap_or_else(|| content::summary_of(&body_html, &text));
        let dateline = checks.text("dateline", self.dateline, MAX_DATELINE);
        let source = checks.text("source", self.source, MAX_SOURCE);
        let image_url = checks.image_url(self.image_url);
        let category = self.category.trim().to_string();
        if category.is_empty() {
            checks.fail("category", "is required");
        } else {
            checks.slug("category", &category, content::MAX_TAXONOMY_SLUG);
        }
        let author = self.author.map(|a| a.trim().to_string());
        if let Some(author) = &author {
            checks.slug("author", author, content::MAX_TAXONOMY_SLUG);
        }
        let tags = checks.tags(self.tags);
        let old_slugs = checks.old_slugs(self.old_slugs, &slug);
        let status = match self.status {
            None => Status::Draft,
            Some(Checked::Valid(status)) => status.into(),
            Some(Checked::Invalid(_)) => {
                checks.fail("status", "must be `draft` or `published`");
                Status::Draft
            }
        };
        let published_at = match self.published_at {
            None => PublishTime::Keep,
            Some(Checked::Valid(at)) => PublishTime::At(truncate_to_seconds(at)),
            Some(Checked::Invalid(problem)) => {
                checks.fail("published_at", problem);
                PublishTime::Keep
            }
        };
        if !checks.0.is_empty() {
            return Err(checks.0);
        }
        Ok(ArticleWrite {
            slug,
            title,
            summary,
            summary_derived,
            word_count: content::word_count(&text) as i32,
            body_html,
            dateline,
            source,
            image_url,
            category,
            tags,
            author,
            old_slugs,
            status,
            published_at,
            now,
            feed_entry: None,
        })
    }
}
