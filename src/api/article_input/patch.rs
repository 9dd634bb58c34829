//! The article patch (JSON merge patch), and the input it makes of an
//! article as stored.

use serde::Deserialize;
use utoipa::ToSchema;

use super::ArticleInput;
use crate::api::articles::{ArticleStatus, ArticleSummary};
use crate::api::input::{Checked, nullable, present};
use crate::api::time;
use crate::error::{FieldError, Location};

/// Changes to an article (JSON merge patch): absent fields stay as they are;
/// `null` clears an optional field and is refused for a required one.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"title": "Harbour strike ends after nine days", "status": "published"}))]
pub struct ArticlePatch {
    /// New slug; the old one then sends readers on to the new (308).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, pattern = "^([a-z0-9]*[a-z][a-z0-9]*|[a-z0-9]+(-[a-z0-9]+)+)$", max_length = 200)]
    pub slug: Option<String>,
    /// New headline, 1 to 300 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, min_length = 1, max_length = 300)]
    pub title: Option<String>,
    /// New teaser, up to 1000 characters; `null` derives it again from the
    /// body.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 1000)]
    pub summary: Option<Option<String>>,
    /// New body as HTML, at most 512 KiB once sanitised. A summary that
    /// was derived from the old body is derived again from the new one.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String)]
    pub body_html: Option<String>,
    /// New body as Markdown, at most 512 KiB once rendered as HTML and
    /// sanitised. A summary that was derived from the old body is derived
    /// again from the new one.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String)]
    pub body_markdown: Option<String>,
    /// New dateline (up to 100 characters); `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 100)]
    pub dateline: Option<Option<String>>,
    /// New source (up to 200 characters); `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 200)]
    pub source: Option<Option<String>>,
    /// New lead image URL (up to 2048 characters); `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, format = "uri", max_length = 2048)]
    pub image_url: Option<Option<String>>,
    /// New category slug; the category must exist.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 100)]
    pub category: Option<String>,
    /// New tags (slugs or names, up to 20, each up to 100 characters),
    /// replacing the old ones.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Vec<String>, max_items = 20)]
    pub tags: Option<Vec<String>>,
    /// New author slug (the author must exist); `null` removes the byline.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 100)]
    pub author: Option<Option<String>>,
    /// Slugs to add to those the article had before (see
    /// `ArticleInput.old_slugs`); none is taken away.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Vec<String>, max_items = 100)]
    pub old_slugs: Option<Vec<String>>,
    /// `draft` or `published`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = ArticleStatus)]
    pub status: Option<Checked<ArticleStatus>>,
    /// New publish time (RFC 3339); `null` unschedules a draft (and
    /// re-dates a published article to now).
    #[serde(default, deserialize_with = "time::checked_nullable")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub published_at: Option<Option<time::CheckedTime>>,
}

impl ArticlePatch {
    /// What is wrong with its status and publish time, which are read
    /// whatever their values and checked once the patch is applied (see
    /// [`crate::api::extract::parse_json_checked`]).
    pub fn problems(self) -> Vec<FieldError> {
        let mut problems = Vec::new();
        if let Some(Checked::Invalid(_)) = self.status {
            problems.push(FieldError::new(
                Location::Body,
                "status",
                "must be `draft` or `published`",
            ));
        }
        if let Some(Some(Checked::Invalid(problem))) = self.published_at {
            problems.push(FieldError::new(Location::Body, "published_at", problem));
        }
        problems
    }

    /// The input that replaces the article `current`, whose body is
    /// `body_html` and whose summary was derived from it when
    /// `summary_derived`, once this patch is applied; and whether the patch
    /// clears `published_at`.
    pub fn apply(
        self,
        current: ArticleSummary,
        body_html: String,
        summary_derived: bool,
    ) -> (ArticleInput, bool) {
        let body_changes = self.body_html.is_some() || self.body_markdown.is_some();
        // A derived summary is derived again (from the new body, or to the
        // same text from the same one), so it stays derived; one an editor
        // wrote stays as written.
        let summary = match self.summary {
            Some(summary) => summary,
            None if summary_derived => None,
            None => Some(current.summary),
        };
        let current_body = (!body_changes).then_some(body_html);
        let clears_published_at = matches!(self.published_at, Some(None));
        let input = ArticleInput {
            slug: Some(self.slug.unwrap_or(current.slug)),
            title: self.title.unwrap_or(current.title),
            summary,
            body_html: self.body_html.or(current_body),
            body_markdown: self.body_markdown,
            dateline: self.dateline.unwrap_or(current.dateline),
            source: self.source.unwrap_or(current.source),
            image_url: self.image_url.unwrap_or(current.image_url),
            category: self.category.unwrap_or(current.category.slug),
            tags: self
                .tags
                .unwrap_or_else(|| current.tags.into_iter().map(|t| t.slug).collect()),
            author: self
                .author
                .unwrap_or(current.author.map(|author| author.slug)),
            old_slugs: self.old_slugs.unwrap_or_default(),
            status: Some(self.status.unwrap_or(Checked::Valid(current.status))),
            published_at: self
                .published_at
                .unwrap_or(current.published_at.map(Checked::Valid)),
            body_kept: !body_changes,
        };
        (input, clears_published_at)
    }
}
