//! Public article reads: the wire form of an article and of its summary;
//! loading them is in `load` (through the article cache in `cache`), the
//! list in `list`.

mod cache;
mod list;
mod load;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use super::Meta;
use crate::content::{self, Status};
use crate::db::articles::{ArticleRow, Extras};
use crate::db::changes::Counts;
use crate::db::engagement;

pub use self::cache::{ArticleCache, KnownToCache};
pub use self::list::list_articles;
pub use self::load::{load_article, teasers, visible_id};

/// A category, tag or author as an article refers to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct NamedRef {
    /// Stable identifier, usable in filters and URLs.
    #[schema(example = "news")]
    pub slug: String,
    /// Display name.
    #[schema(example = "News")]
    pub name: String,
}

/// Where an article is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ArticleStatus {
    /// Never shown to public reads.
    Draft,
    /// Shown once `published_at` has passed.
    Published,
}

impl From<ArticleStatus> for Status {
    fn from(status: ArticleStatus) -> Self {
        match status {
            ArticleStatus::Draft => Status::Draft,
            ArticleStatus::Published => Status::Published,
        }
    }
}

impl From<Status> for ArticleStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Draft => ArticleStatus::Draft,
            Status::Published => ArticleStatus::Published,
        }
    }
}

/// Engagement counts.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Stats {
    /// Total views.
    pub views: i64,
    /// Reactions per kind, keyed by kind (e.g. `very_good`).
    #[schema(example = json!({"very_good": 186, "good": 12, "neutral": 3, "bad": 1}))]
    pub reactions: BTreeMap<String, i64>,
}

impl Stats {
    /// Takes the current values of the counters these stats show.
    pub fn refresh(&mut self, counts: &HashMap<String, i64>) {
        let count = |counter: &str| counts.get(counter).copied().unwrap_or(0);
        self.views = count(engagement::VIEW_COUNTER);
        for (kind, value) in &mut self.reactions {
            *value = count(kind);
        }
    }

    /// Stats from an article's counters, with a zero for each kind not yet used.
    pub fn new(counts: Option<&HashMap<String, i64>>, kinds: &[engagement::KindRow]) -> Self {
        let count = |counter: &str| counts.and_then(|c| c.get(counter)).copied().unwrap_or(0);
        Self {
            views: count(engagement::VIEW_COUNTER),
            reactions: kinds
                .iter()
                .map(|kind| (kind.key.clone(), count(&kind.key)))
                .collect(),
        }
    }
}

/// An article as lists show it: everything but the body.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ArticleSummary {
    /// Numeric id.
    #[schema(example = 42)]
    pub id: i32,
    /// URL slug, unique.
    #[schema(example = "harbour-strike-enters-second-week")]
    pub slug: String,
    /// Headline, plain text: escape it when putting it in HTML.
    pub title: String,
    /// One or two sentences for teasers, plain text (escape it when putting
    /// it in HTML); when the editor gave none, cut from the start of the
    /// body's paragraphs (not its captions, headings, lists or tables).
    pub summary: String,
    /// Where the story was filed, e.g. `LONDON`.
    #[schema(required = true)]
    pub dateline: Option<String>,
    /// Who supplied it, e.g. a wire service.
    #[schema(required = true)]
    pub source: Option<String>,
    /// Lead image, an absolute URL.
    #[schema(required = true)]
    pub image_url: Option<String>,
    /// The article's own category.
    pub category: NamedRef,
    /// Its id, for the server's own use.
    #[serde(skip)]
    pub category_id: i32,
    /// Categories from the root down to the article's own (Home > News).
    pub breadcrumb: Vec<NamedRef>,
    /// Tags, in the order the editor gave them.
    pub tags: Vec<NamedRef>,
    /// The author, if the piece is bylined.
    #[schema(required = true)]
    pub author: Option<NamedRef>,
    /// `draft` or `published`.
    pub status: ArticleStatus,
    /// When it goes (or went) public; null for drafts never scheduled.
    #[schema(required = true)]
    pub published_at: Option<DateTime<Utc>>,
    /// Last change to the article.
    pub updated_at: DateTime<Utc>,
    /// Words in the body.
    pub word_count: i32,
    /// Minutes to read the body, at 230 words a minute.
    pub reading_time_minutes: i32,
    /// Views and reactions.
    pub stats: Stats,
    /// How well it matches `q`; only in search results.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    pub search: Option<SearchHit>,
}

/// Why an article is a search result.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SearchHit {
    /// BM25 relevance (title words weigh most, then summary, then body);
    /// higher is better.
    #[schema(example = 7.42)]
    pub score: f64,
    /// An excerpt of the best-matching field, as HTML: the matched words in
    /// `<mark>`, everything else escaped text.
    #[schema(example = "…dockworkers voted to extend the <mark>strike</mark> into a second week…")]
    pub snippet: String,
}

/// A whole article: the list fields and the sanitised HTML body.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Article {
    #[serde(flatten)]
    pub summary: ArticleSummary,
    /// The body, sanitised HTML: its ids start with `body-`, as do its
    /// links to them (`href="#body-notes"`).
    #[schema(value_type = String)]
    pub body_html: JsonText,
}

/// An article as a read shows it: its list form rendered with the counters
/// kept now, and its body. An article's page is these two spliced, with
/// any feeds after them (see [`crate::api::page::spliced`]): a read of a
/// cached article whose counters have not changed since it was last shown
/// serialises no field of it again.
#[derive(Debug, Clone)]
pub struct ShownArticle {
    teaser: Teaser,
    body_html: JsonText,
    counts: Arc<Counts>,
}

impl ShownArticle {
    /// The summary as loaded: its `stats` may be older than those shown.
    pub fn summary(&self) -> &ArticleSummary {
        &self.teaser.summary
    }

    /// The counters it shows.
    pub fn counts(&self) -> &Arc<Counts> {
        &self.counts
    }

    /// The summary's JSON, an object, with the counters shown.
    pub fn summary_json(&self) -> &str {
        self.teaser.json.get()
    }

    /// The body's JSON, shared with the article kept, not a copy.
    pub fn body_shared(&self) -> Arc<RawValue> {
        Arc::clone(&self.body_html.0)
    }

    /// The whole article, showing the counters it shows: what the spec
    /// says a page holds (pages are spliced instead).
    #[cfg(test)]
    pub fn into_article(self) -> Article {
        let mut summary = self.teaser.to_summary();
        summary.stats.refresh(&self.counts);
        Article {
            summary,
            body_html: self.body_html,
        }
    }
}

/// Text kept as the JSON string it is sent as: an article's body, escaped
/// once when it is loaded rather than by every response that shows it, and
/// shared by them rather than copied.
#[derive(Debug, Clone)]
pub struct JsonText(Arc<RawValue>);

impl JsonText {
    pub fn new(text: &str) -> Self {
        Self(
            serde_json::value::to_raw_value(text)
                .expect("a string serialises")
                .into(),
        )
    }

    /// The bytes of its JSON.
    pub fn json_len(&self) -> usize {
        self.0.get().len()
    }
}

impl Serialize for JsonText {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl ArticleSummary {
    /// True when public readers can see the article at `now`.
    pub fn is_public(&self, now: DateTime<Utc>) -> bool {
        self.status == ArticleStatus::Published && self.published_at.is_some_and(|at| at <= now)
    }

    /// The wire form of a row, with its extras.
    pub fn new(row: ArticleRow, extras: &Extras) -> Self {
        let named = |slug: &str, name: &str| NamedRef {
            slug: slug.to_string(),
            name: name.to_string(),
        };
        let breadcrumb: Vec<NamedRef> = extras
            .categories
            .path(row.category_id)
            .into_iter()
            .map(|c| named(&c.slug, &c.name))
            .collect();
        let category = breadcrumb.last().cloned().unwrap_or_else(|| named("", ""));
        let word_count = row.word_count.max(0) as usize;
        Self {
            id: row.id,
            category,
            category_id: row.category_id,
            breadcrumb,
            tags: extras
                .tags
                .get(&row.id)
                .into_iter()
                .flatten()
                .map(|t| named(&t.slug, &t.name))
                .collect(),
            author: row
                .author_id
                .and_then(|id| extras.authors.get(&id))
                .map(|a| named(&a.slug, &a.name)),
            status: Status::from_stored(&row.status).into(),
            published_at: row.published_at.map(|at| at.and_utc()),
            updated_at: row.updated_at.and_utc(),
            word_count: row.word_count,
            reading_time_minutes: content::reading_time_minutes(word_count) as i32,
            stats: Stats::new(extras.counts.get(&row.id), &extras.reaction_kinds),
            search: None,
            slug: row.slug,
            title: row.title,
            summary: row.summary,
            dateline: row.dateline,
            source: row.source,
            image_url: row.image_url,
        }
    }
}

/// An article's list form as a feed shows it: the summary, and its JSON
/// rendered once for the counters it shows. A feed item serialises the
/// JSON as it is, and an article kept in the [`ArticleCache`] keeps its
/// rendering while its counters stay the same: a Related list of ten then
/// neither copies nor serialises ten summaries again.
#[derive(Debug, Clone)]
pub struct Teaser {
    /// As loaded; its `stats` may be older than those in `json`.
    summary: Arc<ArticleSummary>,
    json: Arc<RawValue>,
    /// The kept counters `json` shows (see [`crate::db::changes::Counters`]);
    /// `None` for a teaser read from the store with its counters.
    counts: Option<Weak<Counts>>,
}

impl Teaser {
    /// Renders `summary` as it is.
    pub fn new(summary: ArticleSummary) -> Self {
        let json = render(&summary);
        Self {
            summary: Arc::new(summary),
            json,
            counts: None,
        }
    }

    /// The counters it shows, if they are the ones kept when it was made:
    /// a response showing it stays exact while they are kept.
    pub fn counts_shown(&self) -> Option<&Weak<Counts>> {
        self.counts.as_ref()
    }

    /// True when public readers can see the article at `now`.
    pub fn is_public(&self, now: DateTime<Utc>) -> bool {
        self.summary.is_public(now)
    }

    /// Its title.
    pub fn title(&self) -> &str {
        &self.summary.title
    }

    /// Its tags, in the order the editor gave them.
    pub fn tags(&self) -> &[NamedRef] {
        &self.summary.tags
    }

    /// Its own category.
    pub fn category(&self) -> &NamedRef {
        &self.summary.category
    }

    /// Its id.
    pub fn id(&self) -> i32 {
        self.summary.id
    }

    /// The bytes of its JSON.
    pub fn json_len(&self) -> usize {
        self.json.get().len()
    }

    /// Its JSON, to share rather than copy (see `http_cache::SplicedBody`).
    pub fn json_shared(&self) -> Arc<RawValue> {
        Arc::clone(&self.json)
    }

    /// The summary, with the counters it was loaded with (the JSON may
    /// show newer ones).
    pub fn to_summary(&self) -> ArticleSummary {
        ArticleSummary::clone(&self.summary)
    }
}

impl Serialize for Teaser {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(serializer)
    }
}

/// `summary` as JSON.
fn render(summary: &ArticleSummary) -> Arc<RawValue> {
    serde_json::value::to_raw_value(summary)
        .expect("a summary serialises: its maps have string keys")
        .into()
}

/// One article.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArticleResponse {
    /// The resource.
    pub data: Article,
    /// About the response.
    pub meta: Meta,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> ArticleSummary {
        let named = |slug: &str, name: &str| NamedRef {
            slug: slug.into(),
            name: name.into(),
        };
        let at = DateTime::parse_from_rfc3339("2026-12-05T10:00:00Z")
            .unwrap()
            .to_utc();
        ArticleSummary {
            id: 7,
            slug: "harbour-strike".into(),
            title: "\"Harbour\" strike \\ é".into(),
            summary: "Dockers walk out.\nAgain.".into(),
            dateline: Some("ROTTERDAM".into()),
            source: None,
            image_url: None,
            category: named("world", "World"),
            category_id: 3,
            breadcrumb: vec![named("home", "Home"), named("world", "World")],
            tags: vec![named("port-strike", "Port strike")],
            author: None,
            status: ArticleStatus::Published,
            published_at: Some(at),
            updated_at: at,
            word_count: 3,
            reading_time_minutes: 1,
            stats: Stats::new(
                None,
                &["good", "very_good"].map(|key| engagement::KindRow {
                    key: key.into(),
                    label: key.into(),
                    position: 0,
                }),
            ),
            search: None,
        }
    }

    /// The spliced page of an article alone is byte for byte what serde
    /// makes of it, with the counters it is shown with rather than those it
    /// was loaded with: its `ETag` is the one `If-Match` compares.
    #[test]
    fn an_article_alone_is_spliced_to_the_bytes_serde_writes() {
        let counts: Counts = [("view".to_string(), 186), ("very_good".to_string(), 9)].into();
        let counts = Arc::new(counts);
        let mut shown_summary = summary();
        shown_summary.stats.refresh(&counts);
        let shown = ShownArticle {
            teaser: Teaser {
                summary: Arc::new(summary()),
                json: render(&shown_summary),
                counts: None,
            },
            body_html: JsonText::new("<p>\"Quoted\" </script>\n</p>"),
            counts,
        };
        let page = crate::api::page::ArticlePageResponse {
            data: crate::api::page::ArticlePage {
                article: shown.clone().into_article(),
                related: None,
                ranking: None,
                recommendations: None,
            },
            meta: Default::default(),
        };
        let json = serde_json::to_string(&page).unwrap();
        let spliced = crate::api::page::alone(&shown).to_bytes();
        assert_eq!(std::str::from_utf8(&spliced).unwrap(), json);
        assert!(json.contains(r#""stats":{"views":186,"reactions":{"good":0,"very_good":9}}"#));
    }

    /// So is a page with feeds: the spec's [`ArticlePageResponse`] is what
    /// it sends.
    #[test]
    fn a_page_with_feeds_is_spliced_to_the_bytes_serde_writes() {
        use crate::api::page::{ArticlePage, ArticlePageMeta, ArticlePageResponse, Feeds};
        use crate::api::recommend::{
            RecommendationItem, RecommendationMeta, RecommendationReason, RecommendationStrategy,
        };
        use crate::api::related::{RelatedItem, RelatedReason};

        let shown = ShownArticle {
            teaser: Teaser::new(summary()),
            body_html: JsonText::new("<p>Body</p>"),
            counts: Arc::default(),
        };
        let other = Teaser::new(ArticleSummary {
            id: 8,
            slug: "dockers-return".into(),
            ..summary()
        });
        let related = vec![RelatedItem {
            article: other.clone(),
            score: 0.5,
            reasons: vec![RelatedReason::SimilarText {
                terms: vec!["dockers".into()],
            }],
        }];
        let recommendations = vec![RecommendationItem {
            article: other,
            score: 0.25,
            reason: RecommendationReason::AlsoRead { because_of: 7 },
        }];
        let meta = || ArticlePageMeta {
            ranking: None,
            recommendations: Some(RecommendationMeta {
                strategy: RecommendationStrategy::Personalized,
                reader: "r-1".into(),
                context: Some(7),
                limit: 8,
                max_per_category: 3,
                next_cursor: None,
            }),
            reaction_kinds: Some(vec![crate::api::engagement::ReactionKind {
                key: "very_good".into(),
                label: "veryGood!".into(),
                position: 1,
            }]),
        };
        let page = ArticlePageResponse {
            data: ArticlePage {
                article: shown.clone().into_article(),
                related: Some(related.clone()),
                ranking: Some(Vec::new()),
                recommendations: Some(recommendations.clone()),
            },
            meta: meta(),
        };
        let feeds = Feeds {
            related: Some(related),
            ranking: Some(Vec::new()),
            recommendations: Some(recommendations),
        };
        let spliced = crate::api::page::spliced(&shown, &feeds, &meta())
            .unwrap()
            .to_bytes();
        let json = serde_json::to_string(&page).unwrap();
        assert_eq!(std::str::from_utf8(&spliced).unwrap(), json);
        assert!(json.contains(r#""body_html":"<p>Body</p>","related":[{"article":{"id":8,"#));
    }

    /// A Related list too, and it names the counters its teasers show
    /// only when every one shows counters kept.
    #[test]
    fn a_related_list_is_spliced_to_the_bytes_serde_writes() {
        use crate::api::WholeListMeta;
        use crate::api::related::{RelatedItem, RelatedReason, RelatedResponse, spliced};

        let kept: Arc<Counts> = Arc::new([("view".to_string(), 3)].into());
        let item = |id: i32, counts: Option<&Arc<Counts>>| RelatedItem {
            article: Teaser {
                counts: counts.map(Arc::downgrade),
                ..Teaser::new(ArticleSummary {
                    id,
                    slug: format!("story-{id}"),
                    ..summary()
                })
            },
            score: 0.1 + id as f32 / 3.0,
            reasons: vec![
                RelatedReason::SimilarText {
                    terms: vec!["dockers".into(), "\"strike\"".into()],
                },
                RelatedReason::SameCategory {
                    category: "world".into(),
                },
            ],
        };
        let response = |data| RelatedResponse {
            data,
            meta: WholeListMeta::default(),
        };
        let both = response(vec![item(8, Some(&kept)), item(9, Some(&kept))]);
        let (body, shown) = spliced(&both).unwrap();
        let json = serde_json::to_string(&both).unwrap();
        assert_eq!(std::str::from_utf8(&body.to_bytes()).unwrap(), json);
        assert!(shown.is_some());

        let one_read_apart = response(vec![item(8, Some(&kept)), item(9, None)]);
        assert!(spliced(&one_read_apart).unwrap().1.is_none());
        let (body, shown) = spliced(&response(Vec::new())).unwrap();
        assert_eq!(
            std::str::from_utf8(&body.to_bytes()).unwrap(),
            serde_json::to_string(&response(Vec::new())).unwrap()
        );
        assert!(shown.is_none(), "an empty list shows no counters");
    }

    #[test]
    fn a_body_kept_as_json_is_sent_as_the_string_it_is() {
        let text = "<p>\"Quoted\" \\ and\nnew line, tab\t, é, \u{1} and </script></p>";
        let json = serde_json::to_string(&JsonText::new(text)).unwrap();
        assert_eq!(json, serde_json::to_string(text).unwrap());
        assert_eq!(serde_json::from_str::<String>(&json).unwrap(), text);
        assert_eq!(JsonText::new(text).json_len(), json.len());
    }
}
