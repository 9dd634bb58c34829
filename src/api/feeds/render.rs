//! A feed written out as RSS 2.0, Atom or JSON Feed 1.1.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{FeedFormat, FeedLinks};
use crate::api::articles::ArticleSummary;
use crate::content::without_unprintable;

/// A feed, whatever its format.
pub(super) struct Feed {
    pub(super) title: String,
    pub(super) description: String,
    /// This document's own address.
    pub(super) self_url: String,
    pub(super) entries: Vec<Entry>,
}

/// One article of a feed, with its addresses and body.
pub(super) struct Entry {
    pub(super) article: ArticleSummary,
    /// Where readers read it (see [`FeedLinks`]).
    pub(super) url: String,
    /// What names it for good: its address in this API, by id, which no
    /// slug change moves (feed readers know an item by it, and Atom
    /// requires it never to change).
    pub(super) id: String,
    pub(super) body_html: String,
}

impl Entry {
    /// When the entry last changed for a reader: its last edit, or its
    /// publication if that came later (a scheduled article is edited
    /// before it is due, and Atom's `updated` may not come before its
    /// `published`).
    fn modified(&self) -> DateTime<Utc> {
        let article = &self.article;
        article
            .published_at
            .map_or(article.updated_at, |published| {
                published.max(article.updated_at)
            })
    }
}

impl Feed {
    /// When anything in it last changed. An empty feed says the Unix
    /// epoch: nothing in it has changed, and the time of the request would
    /// give it a new ETag on every poll, so no reader would get a 304.
    fn updated(&self) -> DateTime<Utc> {
        self.entries
            .iter()
            .map(Entry::modified)
            .max()
            .unwrap_or(DateTime::UNIX_EPOCH)
    }

    /// The document in `format`. Written with a character XML cannot
    /// carry (stored before such characters were refused), an XML feed
    /// would not load in any reader: they are left out.
    pub(super) fn render(&self, format: FeedFormat, links: &FeedLinks) -> String {
        let xml = match format {
            FeedFormat::Rss => self.rss(links),
            FeedFormat::Atom => self.atom(links),
            FeedFormat::Json => return self.json(links),
        };
        match without_unprintable(&xml) {
            Cow::Borrowed(_) => xml,
            Cow::Owned(printable) => printable,
        }
    }

    fn rss(&self, links: &FeedLinks) -> String {
        use rss::extension::Extension;
        use rss::extension::dublincore::DublinCoreExtension;
        let items = self
            .entries
            .iter()
            .map(|entry| {
                let article = &entry.article;
                rss::Item {
                    title: Some(article.title.clone()),
                    link: Some(entry.url.clone()),
                    // RSS readers take a description as HTML; a summary
                    // is text, so `<b>` in it is shown, not obeyed.
                    description: Some(html_escape::encode_text(&article.summary).into_owned()),
                    content: Some(entry.body_html.clone()),
                    guid: Some(rss::Guid {
                        value: entry.id.clone(),
                        permalink: false,
                    }),
                    pub_date: article.published_at.map(|at| at.to_rfc2822()),
                    categories: std::iter::once(&article.category)
                        .chain(&article.tags)
                        .map(|named| rss::Category {
                            name: named.name.clone(),
                            domain: None,
                        })
                        .collect(),
                    dublin_core_ext: article.author.as_ref().map(|author| DublinCoreExtension {
                        creators: vec![author.name.clone()],
                        ..Default::default()
                    }),
                    extensions: article
                        .image_url
                        .as_deref()
                        .map(media_content)
                        .unwrap_or_default(),
                    ..Default::default()
                }
            })
            .collect();
        let namespaces = [
            ("atom", "http://www.w3.org/2005/Atom"),
            ("content", "http://purl.org/rss/1.0/modules/content/"),
            ("dc", "http://purl.org/dc/elements/1.1/"),
            ("media", "http://search.yahoo.com/mrss/"),
        ]
        .into_iter()
        .map(|(prefix, uri)| (prefix.to_string(), uri.to_string()))
        .collect();
        // Its own address, as RSS Best Practices ask (`atom:link`): how a
        // reader given a copy knows where to poll.
        let itself = Extension {
            name: "atom:link".into(),
            attrs: [
                ("href", self.self_url.as_str()),
                ("rel", "self"),
                ("type", "application/rss+xml"),
            ]
            .into_iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect(),
            ..Default::default()
        };
        let extensions = BTreeMap::from([(
            "atom".to_string(),
            BTreeMap::from([("link".to_string(), vec![itself])]),
        )]);
        rss::Channel {
            title: self.title.clone(),
            link: links.base_url.clone(),
            description: self.description.clone(),
            last_build_date: Some(self.updated().to_rfc2822()),
            generator: Some("Frontpage".into()),
            items,
            namespaces,
            extensions,
            ..Default::default()
        }
        .to_string()
    }

    fn atom(&self, links: &FeedLinks) -> String {
        use atom_syndication::{Content, Entry, Feed, Link, Person, Text};
        let link = |href: &str, rel: &str, mime: Option<&str>| Link {
            href: href.to_string(),
            rel: rel.to_string(),
            mime_type: mime.map(str::to_string),
            ..Default::default()
        };
        let entries = self
            .entries
            .iter()
            .map(|entry| {
                let article = &entry.article;
                Entry {
                    title: Text::plain(article.title.clone()),
                    id: entry.id.clone(),
                    updated: entry.modified().fixed_offset(),
                    published: article.published_at.map(|at| at.fixed_offset()),
                    links: std::iter::once(link(&entry.url, "alternate", Some("text/html")))
                        .chain(
                            article
                                .image_url
                                .as_deref()
                                .map(|image| link(image, "enclosure", image_type(image))),
                        )
                        .collect(),
                    summary: Some(Text::plain(article.summary.clone())),
                    content: Some(Content {
                        value: Some(entry.body_html.clone()),
                        content_type: Some("html".into()),
                        ..Default::default()
                    }),
                    authors: article
                        .author
                        .iter()
                        .map(|author| Person {
                            name: author.name.clone(),
                            ..Default::default()
                        })
                        .collect(),
                    categories: std::iter::once(&article.category)
                        .chain(&article.tags)
                        .map(|named| atom_syndication::Category {
                            term: named.slug.clone(),
                            label: Some(named.name.clone()),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }
            })
            .collect();
        Feed {
            title: Text::plain(self.title.clone()),
            subtitle: Some(Text::plain(self.description.clone())),
            id: self.self_url.clone(),
            updated: self.updated().fixed_offset(),
            authors: vec![Person {
                name: links.site_name.clone(),
                ..Default::default()
            }],
            links: vec![
                link(&self.self_url, "self", Some("application/atom+xml")),
                link(&links.base_url, "alternate", None),
            ],
            entries,
            ..Default::default()
        }
        .to_string()
    }

    fn json(&self, links: &FeedLinks) -> String {
        let document = JsonFeed {
            version: "https://jsonfeed.org/version/1.1",
            title: &self.title,
            description: &self.description,
            home_page_url: &links.base_url,
            feed_url: &self.self_url,
            items: self
                .entries
                .iter()
                .map(|entry| {
                    let article = &entry.article;
                    JsonFeedItem {
                        id: &entry.id,
                        url: &entry.url,
                        title: &article.title,
                        summary: &article.summary,
                        content_html: &entry.body_html,
                        image: article.image_url.as_deref(),
                        date_published: article.published_at.map(|at| at.to_rfc3339()),
                        date_modified: entry.modified().to_rfc3339(),
                        authors: article
                            .author
                            .iter()
                            .map(|author| JsonFeedAuthor { name: &author.name })
                            .collect(),
                        tags: std::iter::once(&article.category)
                            .chain(&article.tags)
                            .map(|named| named.name.as_str())
                            .collect(),
                    }
                })
                .collect(),
        };
        serde_json::to_string(&document).expect("a feed serialises")
    }
}

/// An RSS item's lead image, as Media RSS gives it (`<media:content
/// medium="image">`): RSS's own `<enclosure>` must state the file's length,
/// which the API does not know.
fn media_content(url: &str) -> rss::extension::ExtensionMap {
    let content = rss::extension::Extension {
        name: "media:content".into(),
        attrs: [("url", url), ("medium", "image")]
            .into_iter()
            .chain(image_type(url).map(|mime| ("type", mime)))
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect(),
        ..Default::default()
    };
    BTreeMap::from([(
        "media".to_string(),
        BTreeMap::from([("content".to_string(), vec![content])]),
    )])
}

/// The media type of an image by its file name's extension, if it says.
fn image_type(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let extension = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match extension.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "svg" => "image/svg+xml",
        _ => return None,
    })
}

/// JSON Feed 1.1 (<https://jsonfeed.org/version/1.1>).
#[derive(Serialize, ToSchema)]
pub(super) struct JsonFeed<'a> {
    version: &'static str,
    title: &'a str,
    description: &'a str,
    home_page_url: &'a str,
    feed_url: &'a str,
    items: Vec<JsonFeedItem<'a>>,
}

/// One item of a JSON Feed: an article.
#[derive(Serialize, ToSchema)]
pub(super) struct JsonFeedItem<'a> {
    id: &'a str,
    url: &'a str,
    title: &'a str,
    summary: &'a str,
    content_html: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    date_published: Option<String>,
    date_modified: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    authors: Vec<JsonFeedAuthor<'a>>,
    tags: Vec<&'a str>,
}

/// An author of a JSON Feed item.
#[derive(Serialize, ToSchema)]
pub(super) struct JsonFeedAuthor<'a> {
    name: &'a str,
}
