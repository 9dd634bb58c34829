//! `frontpage import` and `frontpage export`: articles in and out of a store
//! as files. Import reads NDJSON (one article input per line, as the bulk
//! endpoint takes, after any categories, authors and tags: see [`taxonomy`])
//! and RSS 2.0, Atom or JSON feeds (parsed by `feed-rs`); export writes
//! NDJSON that imports back unchanged, into the same store or a new one.

pub mod taxonomy;

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use chrono::SecondsFormat;
use diesel::prelude::*;
use feed_rs::model::{Content, FeedType};
use serde_json::{Value, json};
use xxhash_rust::xxh3::xxh3_128;

use crate::api::article_input::{ArticleInput, MAX_TAGS, tag_of};
use crate::api::import::{BulkReport, Import, ndjson_lines, unknown_references, upsert_batch};
use crate::api::manage::BULK_BATCH;
use crate::db::article_writes::FeedEntry;
use crate::db::articles::{self, ArticleRow, Taxonomy};
use crate::db::schema::articles as articles_table;
use crate::db::taxonomy::CategoryTree;
use crate::db::{self, Db};
use crate::error::{FieldError, Location};

/// One article input read from a file, or why it could not be read.
#[derive(Debug)]
pub struct Record {
    /// Its line (NDJSON) or entry (feeds) number, from 1.
    pub line: usize,
    pub input: Result<ArticleInput, Vec<FieldError>>,
    /// A feed entry's id within its feed, as the JSON pair `[feed, entry]`:
    /// the entry's `guid` (RSS) or `id` (Atom), else its link; the feed's id
    /// (an RSS channel's link), else its title. With a digest of the
    /// article it gives. `None` for NDJSON lines and entries with neither
    /// an id nor a link.
    pub feed_entry: Option<FeedEntry>,
}

impl Record {
    /// An NDJSON line's record: no feed entry.
    fn ndjson(line: usize, input: Result<ArticleInput, Vec<FieldError>>) -> Self {
        Self {
            line,
            input,
            feed_entry: None,
        }
    }
}

/// How imported feed entries are filed.
#[derive(Debug, Clone)]
pub struct FeedDefaults {
    /// The category (slug) of every entry.
    pub category: String,
}

/// A file's article inputs, and the categories, authors and tags before them.
pub struct Read {
    pub records: Vec<Record>,
    pub taxonomy: Vec<taxonomy::Line>,
    /// Whether it was a feed (every entry goes in the default category).
    pub feed: bool,
}

/// Reads a file's article inputs: a feed when it starts with `<` or is a
/// JSON Feed, NDJSON otherwise.
pub fn read(path: &Path, defaults: &FeedDefaults) -> anyhow::Result<Read> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    // A byte order mark, as some editors and feeds begin with, is no content.
    let bytes = bytes
        .strip_prefix("\u{feff}".as_bytes())
        .unwrap_or(&bytes)
        .to_vec();
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'<') || is_json_feed(&bytes) {
        let records = read_feed(&bytes, defaults)
            .with_context(|| format!("parsing the feed {}", path.display()))?;
        Ok(Read {
            records,
            taxonomy: Vec::new(),
            feed: true,
        })
    } else {
        let (records, taxonomy) = read_ndjson(&bytes);
        Ok(Read {
            records,
            taxonomy,
            feed: false,
        })
    }
}

/// Whether `bytes` are one JSON object with a JSON Feed `version` (a feed
/// is pretty-printed over many lines, an NDJSON file is many objects).
fn is_json_feed(bytes: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Versioned {
        version: Option<String>,
    }
    serde_json::from_slice::<Versioned>(bytes)
        .ok()
        .and_then(|feed| feed.version)
        .is_some_and(|version| version.starts_with("https://jsonfeed.org/version/"))
}

/// An NDJSON file's articles, and its categories, authors and tags.
fn read_ndjson(bytes: &[u8]) -> (Vec<Record>, Vec<taxonomy::Line>) {
    let mut records = Vec::new();
    let mut named = Vec::new();
    for (number, line) in ndjson_lines(bytes) {
        let line = match line {
            Ok(line) => line,
            Err(not_utf8) => {
                records.push(Record::ndjson(number, Err(vec![not_utf8])));
                continue;
            }
        };
        let value = serde_json::from_str::<Value>(line);
        match value.as_ref().ok().and_then(taxonomy::from_line) {
            Some(parsed) => named.push((number, parsed)),
            None => records.push(Record::ndjson(number, parse_line(line))),
        }
    }
    (records, named)
}

/// An NDJSON line as an article input, its problems named by field as the
/// bulk endpoint names them.
fn parse_line(line: &str) -> Result<ArticleInput, Vec<FieldError>> {
    crate::api::extract::parse_json_checked(line.as_bytes(), ArticleInput::problems)
        .map_err(crate::api::import::line_errors)
}

/// A feed entry, made into an article input's JSON, as one.
fn parse(value: Value) -> Result<ArticleInput, Vec<FieldError>> {
    serde_json::from_value(value)
        .map_err(|error| vec![FieldError::new(Location::Body, "(line)", error.to_string())])
}

/// Each entry of an RSS or Atom feed as a published article of the
/// default category: its title, summary, content (or summary) as the body,
/// date, categories as tags, and the feed's title as the source. Its slug
/// is the title's with the entry's day (`morning-briefing-2026-01-05`), so
/// a headline that comes back on another day, as a briefing's does, is a
/// new article. Importing the feed again updates each article: the one its
/// entry became, found by the entry's id (an RSS `guid`, an Atom `id`, else
/// its link), which stays when a headline is corrected; the slug stays too.
fn read_feed(bytes: &[u8], defaults: &FeedDefaults) -> anyhow::Result<Vec<Record>> {
    let feed = feed_rs::parser::Builder::new()
        .id_generator(known_by_link)
        .build()
        .parse(bytes)?;
    let source = feed.title.as_ref().map(|title| title.content.clone());
    // Entries are known within their feed: two feeds may both number
    // theirs 1, 2, 3. A feed is known by its id (an RSS channel by its
    // link), else by its title.
    let namespace = if feed.id.is_empty() {
        source.clone().unwrap_or_default()
    } else {
        feed.id.clone()
    };
    // Each text says whether it is HTML: an Atom text is unless its `type`
    // says so, and JSON Feed's `summary` and `content_text` never are. An
    // RSS description is HTML in practice whatever its version (feed-rs
    // calls an RSS 1.0 one plain text, as its specification does).
    let rss = matches!(
        feed.feed_type,
        FeedType::RSS0 | FeedType::RSS1 | FeedType::RSS2
    );
    let html = move |content_type: &dyn std::fmt::Display| rss || is_html(content_type);
    Ok(feed
        .entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            let body = match (entry.content, &entry.summary) {
                (
                    Some(Content {
                        content_type,
                        body: Some(body),
                        ..
                    }),
                    _,
                ) => html_or_text(html(&content_type), body),
                (_, Some(summary)) => {
                    html_or_text(html(&summary.content_type), summary.content.clone())
                }
                _ => String::new(),
            };
            let summary = entry
                .summary
                .map(|summary| plain(html(&summary.content_type), &summary.content));
            // An RSS title is HTML in practice when it looks it: publishers
            // escape its markup and entities once more (`&amp;amp;`,
            // `&lt;b&gt;`); one with a `<` of its own (`Vec<T>`) is text.
            let title = entry
                .title
                .map(|title| {
                    let markup = if rss {
                        has_entity(&title.content)
                            || ["</", "<br"]
                                .iter()
                                .any(|sign| title.content.contains(sign))
                    } else {
                        is_html(&title.content_type)
                    };
                    plain(markup, &title.content)
                })
                .unwrap_or_default();
            // JSON Feed and RSS items need no title: the start of the
            // text is the headline.
            let title = if title.trim().is_empty() {
                crate::content::derive_summary(&text_of(&body))
            } else {
                title
            };
            // A headline with no words of its own (a wire flash, or a
            // dash where the text should be) is its own body; an image
            // that came without words stays after it.
            let body = if !crate::content::has_a_word(&text_of(&body)) {
                format!("{}{body}", crate::content::html_of_text(&title))
            } else {
                body
            };
            let published = entry.published.or(entry.updated);
            let stem = crate::content::slugify(&title);
            let slug = published
                .filter(|_| !stem.is_empty())
                .map(|at| format!("{stem}-{}", at.format("%Y-%m-%d")));
            let categories: Vec<String> = entry
                .categories
                .into_iter()
                .map(|category| category.label.unwrap_or(category.term))
                .collect();
            let mut input = json!({
                "slug": slug,
                "title": title,
                "summary": summary,
                "body_html": body,
                "source": source,
                "category": defaults.category,
                "tags": categories,
                "status": "published",
                "published_at": published.map(|at| at.to_rfc3339()),
            });
            // Of the entry as given: entries imported before the tags were
            // cut to those that fit keep their digests.
            let feed_entry = (!entry.id.is_empty()).then(|| FeedEntry {
                id: json!([namespace, entry.id]).to_string(),
                digest: format!("{:032x}", xxh3_128(input.to_string().as_bytes())),
            });
            input["tags"] = json!(feed_tags(&input["tags"]));
            Record {
                line: i + 1,
                input: parse(input),
                feed_entry,
            }
        })
        .collect())
}

/// An entry's categories as tags: those that can be tags (see
/// [`tag_of`]), each once, the first [`MAX_TAGS`]. A wire feed's entry may
/// carry dozens, or a phrase too long for a tag: its story comes in with
/// the others rather than being refused on every import.
fn feed_tags(categories: &Value) -> Vec<String> {
    let mut tags: Vec<(String, String)> = Vec::new();
    for (slug, name) in categories
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|category| tag_of(category.as_str()?))
    {
        if tags.len() == MAX_TAGS {
            break;
        }
        if !tags.iter().any(|(taken, _)| *taken == slug) {
            tags.push((slug, name));
        }
    }
    tags.into_iter().map(|(_, name)| name).collect()
}

/// Whether `text` holds an HTML entity (`&amp;`, `&#8217;`, `&#x2019;`):
/// text escaped as HTML, where a bare `&` is one of its own.
fn has_entity(text: &str) -> bool {
    text.match_indices('&').any(|(at, _)| {
        let rest = &text[at + 1..];
        let Some((name, _)) = rest.split_once(';') else {
            return false;
        };
        let number = name.strip_prefix('#');
        let valid = match number {
            Some(hex) if hex.starts_with(['x', 'X']) => {
                hex.len() > 1 && hex[1..].bytes().all(|b| b.is_ascii_hexdigit())
            }
            Some(decimal) => !decimal.is_empty() && decimal.bytes().all(|b| b.is_ascii_digit()),
            None => !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric()),
        };
        valid && name.len() <= 32
    })
}

/// A feed's text as plain text: an Atom title may be HTML (`type="html"`
/// or `"xhtml"`), which readers must not see as markup; a plain one is put
/// on one line, as a feed's indentation would otherwise stay in it.
fn plain(html: bool, text: &str) -> String {
    if html {
        text_of(text)
    } else {
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

/// A feed's content as the body's HTML: as it is if it is HTML, else its
/// text in paragraphs.
fn html_or_text(html: bool, content: String) -> String {
    if html {
        content
    } else {
        crate::content::html_of_text(&content)
    }
}

/// `text/html`, or XHTML's media type (whatever `feed-rs` names it).
fn is_html(content_type: &dyn std::fmt::Display) -> bool {
    content_type.to_string().contains("html")
}

/// The readable text of a feed's HTML, without what sanitising drops with
/// its contents (a `<script>`'s code, a `<style>`'s rules).
fn text_of(html: &str) -> String {
    crate::content::plain_text(&crate::content::sanitize_html(html))
}

/// The id of a feed or entry that has none of its own (an RSS channel, an
/// item without a `guid`): its link (the one to the page, not to itself or
/// its comments), as feed readers take it. `feed-rs` would hash the title
/// in, which a corrected headline changes. Empty when there is no link.
fn known_by_link(
    links: &[feed_rs::model::Link],
    _: &Option<feed_rs::model::Text>,
    _: Option<&str>,
) -> String {
    links
        .iter()
        .find(|link| link.rel.as_deref().is_none_or(|rel| rel == "alternate"))
        .or(links.first())
        .map(|link| link.href.trim_end_matches('/').to_string())
        .unwrap_or_default()
}

/// Imports `records` into `db`, a batch per transaction; `progress` is told
/// how many are done after each batch.
pub fn import(
    db: &Db,
    records: Vec<Record>,
    mut progress: impl FnMut(usize),
) -> anyhow::Result<BulkReport> {
    let mut import = Import::new(db::now());
    let mut valid = Vec::new();
    for record in records {
        valid.extend(import.check(record.line, record.input, record.feed_entry));
    }
    let unlooked = import.unlooked();
    if !unlooked.is_empty() {
        import.name_unknown(db.read_blocking(move |conn| unknown_references(conn, unlooked))?);
    }
    progress(import.done());
    while !valid.is_empty() {
        let batch: Vec<_> = valid.drain(..valid.len().min(BULK_BATCH)).collect();
        let written = import.written();
        let outcomes = db.write_blocking(move |conn| upsert_batch(conn, batch, &written))?;
        import.record(outcomes);
        progress(import.done());
    }
    Ok(import.finish())
}

/// What an export wrote.
#[derive(Debug, Default, Clone, Copy)]
pub struct Exported {
    /// Categories, authors and tags.
    pub named: usize,
    pub articles: usize,
    /// What each imported feed entry became.
    pub feed_entries: usize,
}

/// Writes every category, author and tag (see [`taxonomy`]), then every
/// article (drafts too), oldest id first, as NDJSON article inputs, then
/// what each imported feed entry became.
///
/// All of it is read in one transaction, so the file is one snapshot of
/// the store, as a backup is: every category, author and tag an article
/// names is among the lines before it, even if an editor made it during
/// the export. A server writing meanwhile carries on; it only cannot
/// empty its write-ahead log until the export ends.
pub fn export(conn: &mut SqliteConnection, out: &mut impl Write) -> anyhow::Result<Exported> {
    conn.transaction(|conn| export_snapshot(conn, out))
}

fn export_snapshot(conn: &mut SqliteConnection, out: &mut impl Write) -> anyhow::Result<Exported> {
    const CHUNK: i64 = 500;
    let named = taxonomy::export(conn)?;
    for line in &named {
        serde_json::to_writer(&mut *out, line)?;
        out.write_all(b"\n")?;
    }
    let mut last = 0;
    let mut written = Exported {
        named: named.len(),
        ..Exported::default()
    };
    loop {
        let rows: Vec<ArticleRow> = articles_table::table
            .filter(articles_table::id.gt(last))
            .order(articles_table::id)
            .limit(CHUNK)
            .select(ArticleRow::as_select())
            .load(conn)?;
        let ids: Vec<i32> = rows.iter().map(|row| row.id).collect();
        let tree = CategoryTree::load(conn)?;
        let taxonomy = Taxonomy::with_categories(conn, tree)?;
        let extras = articles::extras_with(conn, &rows, taxonomy)?;
        let mut bodies = articles::bodies(conn, &ids)?;
        let mut old_slugs = db::old_slugs::of_articles(conn, &ids)?;
        let Some(end) = rows.last().map(|row| row.id) else {
            break;
        };
        for row in rows {
            let old = old_slugs.remove(&row.id);
            let mut line = json!({
                "slug": row.slug,
                "title": row.title,
                // A derived summary is left for the import to derive
                // again: it stays derived, following the body.
                "summary": (!row.summary_derived).then_some(row.summary),
                "body_html": bodies.remove(&row.id).unwrap_or_default(),
                "dateline": row.dateline,
                "source": row.source,
                "image_url": row.image_url,
                "category": extras.categories.get(row.category_id).map(|c| c.slug.clone()),
                "tags": extras.tags.get(&row.id).into_iter().flatten().map(|t| t.slug.clone()).collect::<Vec<_>>(),
                "author": row.author_id.and_then(|id| extras.authors.get(&id)).map(|a| a.slug.clone()),
                "status": row.status,
                "published_at": row.published_at.map(|at| at.and_utc().to_rfc3339_opts(SecondsFormat::Secs, true)),
            });
            // Only where there are some: most articles never changed slug.
            if let Some(old) = old {
                line["old_slugs"] = json!(old);
            }
            serde_json::to_writer(&mut *out, &line)?;
            out.write_all(b"\n")?;
            written.articles += 1;
        }
        last = end;
    }
    let entries = taxonomy::export_feed_entries(conn)?;
    for line in &entries {
        serde_json::to_writer(&mut *out, line)?;
        out.write_all(b"\n")?;
    }
    written.feed_entries = entries.len();
    Ok(written)
}
