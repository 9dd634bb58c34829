//! Importing articles in bulk, for `POST /articles/bulk` and `frontpage
//! import`: each input is checked on its own, a slug may appear once per
//! import, and valid ones are upserted by slug, each in its own savepoint,
//! so that a bad line leaves no trace and a good one is never lost to it.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use chrono::NaiveDateTime;
use diesel::Connection;
use parking_lot::Mutex;
use serde::Serialize;
use utoipa::ToSchema;

use super::article_input::ArticleInput;
use crate::db::article_writes::{self, ArticleWrite, FeedEntry, SlugChoice, Telling, Upserted};
use crate::db::{self, StoreError};
use crate::error::{ApiError, FieldError, Location};

/// One line of a bulk import that was not stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct LineFailure {
    /// 1-based line number in the body.
    pub line: usize,
    /// What was wrong with it.
    pub errors: Vec<FieldError>,
}

/// What a bulk import did.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct BulkReport {
    /// Lines that created an article.
    pub created: usize,
    /// Lines that changed an existing article (same slug).
    pub updated: usize,
    /// Lines identical to the stored article; nothing was written.
    pub unchanged: usize,
    /// Lines that were not stored.
    pub failed: usize,
    /// Each failed line, with its errors.
    pub errors: Vec<LineFailure>,
}

/// An import in progress: what was checked, stored and refused so far.
pub struct Import {
    now: NaiveDateTime,
    first_line_of: HashMap<String, Vec<(Telling, usize)>>,
    written: Written,
    report: BulkReport,
    /// The category and author each line refused before the store names,
    /// not yet looked up (see [`Import::unlooked`]).
    unlooked: Vec<Unlooked>,
}

/// A refused line, and the category and author it names.
pub type Unlooked = (usize, String, Option<String>);

/// The category and author slugs `input` names.
pub fn taxonomy_of(input: &ArticleInput) -> (String, Option<String>) {
    let author = input
        .author
        .as_deref()
        .map(|author| author.trim().to_string());
    (input.category.trim().to_string(), author)
}

/// The problems validation found, and the unknown category or author of
/// fields it did not already refuse (a malformed slug is not looked up).
pub fn every_problem(mut errors: Vec<FieldError>, unknown: Vec<db::Invalid>) -> Vec<FieldError> {
    let named: Vec<String> = errors.iter().map(|error| error.name.clone()).collect();
    errors.extend(
        unknown
            .into_iter()
            .filter(|problem| !named.contains(&problem.field))
            .map(|problem| FieldError::new(Location::Body, problem.field, problem.message)),
    );
    errors
}

/// Which of the `lines`' categories and authors do not exist, each pair
/// looked up once: for [`Import::name_unknown`].
pub fn unknown_references(
    conn: &mut diesel::SqliteConnection,
    lines: Vec<Unlooked>,
) -> Result<Vec<(usize, Vec<db::Invalid>)>, StoreError> {
    let mut looked: HashMap<(String, Option<String>), Vec<db::Invalid>> = HashMap::new();
    let mut found = Vec::with_capacity(lines.len());
    for (line, category, author) in lines {
        let unknown = match looked.entry((category, author)) {
            Entry::Occupied(known) => known.get().clone(),
            Entry::Vacant(new) => {
                let (category, author) = new.key();
                let unknown = article_writes::unknown_taxonomy(conn, category, author.as_deref())?;
                new.insert(unknown).clone()
            }
        };
        found.push((line, unknown));
    }
    Ok(found)
}

/// The articles an import has written so far (created, updated or found
/// unchanged), each with the line that did: a later line that comes to
/// the same article is refused, as two lines with one slug are.
pub type Written = Arc<Mutex<HashMap<i32, usize>>>;

impl Import {
    /// An import whose inputs are checked as of `now`.
    pub fn new(now: NaiveDateTime) -> Self {
        Self {
            now,
            first_line_of: HashMap::new(),
            written: Written::default(),
            report: BulkReport::default(),
            unlooked: Vec::new(),
        }
    }

    /// The refused lines whose category and author are still to be looked
    /// up, so that a line's report names every problem, as a single
    /// write's answer does (see [`unknown_references`]).
    pub fn unlooked(&mut self) -> Vec<Unlooked> {
        std::mem::take(&mut self.unlooked)
    }

    /// Adds to each refused line the category or author it names that does
    /// not exist (what [`unknown_references`] found).
    pub fn name_unknown(&mut self, found: Vec<(usize, Vec<db::Invalid>)>) {
        let mut unknown_on: HashMap<usize, Vec<db::Invalid>> = found.into_iter().collect();
        for failure in &mut self.report.errors {
            if let Some(unknown) = unknown_on.remove(&failure.line) {
                failure.errors = every_problem(std::mem::take(&mut failure.errors), unknown);
            }
        }
    }

    /// What [`upsert_batch`] is given with each batch of this import.
    pub fn written(&self) -> Written {
        Arc::clone(&self.written)
    }

    /// Has the category (and author) a refused `line` names, one whose
    /// input did not read, looked up with the others, so that its failure
    /// names them too if they do not exist.
    pub fn look_up(&mut self, line: usize, category: String, author: Option<String>) {
        self.unlooked.push((line, category, author));
    }

    /// Checks the input of `line`, imported from `feed_entry` (see
    /// [`ArticleWrite::feed_entry`]) if it comes from a feed: a valid one
    /// comes back as a write to store; a bad one is reported.
    pub fn check(
        &mut self,
        line: usize,
        input: Result<ArticleInput, Vec<FieldError>>,
        feed_entry: Option<FeedEntry>,
    ) -> Option<(usize, ArticleWrite)> {
        let references = input.as_ref().ok().map(taxonomy_of);
        let checked = input
            .and_then(|input| input.validate(self.now))
            .map(|write| ArticleWrite {
                feed_entry,
                ..write
            })
            .and_then(|write| once_per_import(&mut self.first_line_of, line, write));
        match checked {
            Ok(write) => Some((line, write)),
            Err(errors) => {
                if let Some((category, author)) = references {
                    self.unlooked.push((line, category, author));
                }
                self.report.errors.push(LineFailure { line, errors });
                None
            }
        }
    }

    /// Counts what storing a batch did.
    pub fn record(&mut self, outcomes: Vec<LineOutcome>) {
        for (line, outcome) in outcomes {
            match outcome {
                Ok(Upserted::Created) => self.report.created += 1,
                Ok(Upserted::Updated) => self.report.updated += 1,
                Ok(Upserted::Unchanged) => self.report.unchanged += 1,
                Err(error) => self.report.errors.push(LineFailure {
                    line,
                    errors: line_errors(error.into()),
                }),
            }
        }
    }

    /// Lines stored or refused so far.
    pub fn done(&self) -> usize {
        self.report.created + self.report.updated + self.report.unchanged + self.report.errors.len()
    }

    /// The report, failures in line order.
    pub fn finish(mut self) -> BulkReport {
        self.report.errors.sort_by_key(|failure| failure.line);
        self.report.failed = self.report.errors.len();
        self.report
    }
}

/// Refuses a second line with the same slug, or from the same feed entry:
/// upserting both would silently keep only the last one. (Two entries of a
/// feed with the same headline on the same day are two stories, and so are
/// two lines without a slug under one headline on two days or from two
/// sources: see [`article_writes::upsert`].)
fn once_per_import(
    first_line_of: &mut HashMap<String, Vec<(Telling, usize)>>,
    line: usize,
    write: ArticleWrite,
) -> Result<ArticleWrite, Vec<FieldError>> {
    // An entry's id is a JSON array, which no slug can be. A slug made
    // from a title is cut short (see `article_writes::upsert`): two long
    // titles that start the same are two stories, known by the whole
    // title's slug; and two lines under one headline are two stories when
    // their days or sources tell them apart, as the upsert tells them.
    let (key, field, telling) = match (&write.feed_entry, &write.slug) {
        (Some(entry), _) => (entry.id.clone(), "id", Telling::none()),
        (None, SlugChoice::Derived(_)) => {
            (slug::slugify(&write.title), "slug", Telling::of(&write))
        }
        (None, SlugChoice::Given(slug)) => (slug.clone(), "slug", Telling::none()),
    };
    let seen = first_line_of.entry(key).or_default();
    match seen.iter().find(|(other, _)| !other.apart(&telling)) {
        Some((_, first)) => {
            let detail = match &write.feed_entry {
                // `[feed, entry]`: the entry's own id is what its feed shows.
                Some(entry) => {
                    let id = serde_json::from_str::<(String, String)>(&entry.id)
                        .map_or_else(|_| entry.id.clone(), |(_, id)| id);
                    format!(
                        "`{id}` is also the id of entry {first}; an entry may appear once per import"
                    )
                }
                None => format!(
                    "`{}` is also the slug of line {first}; an article may appear once per import",
                    match &write.slug {
                        SlugChoice::Given(slug) => slug.clone(),
                        SlugChoice::Derived(_) => slug::slugify(&write.title),
                    }
                ),
            };
            Err(vec![FieldError::new(Location::Body, field, detail)])
        }
        None => {
            seen.push((telling, line));
            Ok(write)
        }
    }
}

/// A line number and what storing it did.
pub type LineOutcome = (usize, Result<Upserted, StoreError>);

/// Upserts each line in its own savepoint, so a bad line leaves no trace.
/// A line's own problems are reported with it; a database failure aborts
/// the batch (the client may retry: upserts are idempotent).
pub fn upsert_batch(
    conn: &mut diesel::SqliteConnection,
    batch: Vec<(usize, ArticleWrite)>,
    written: &Written,
) -> Result<Vec<LineOutcome>, StoreError> {
    let mut written = written.lock();
    let mut outcomes = Vec::with_capacity(batch.len());
    for (line, mut write) in batch {
        // Stamped as it is written, not when the import was checked: a long
        // import's last batches would otherwise carry a time minutes before
        // their commit, older than what a start of the Related index looks
        // back for (see `related::refresh`).
        write.now = db::now();
        // A line that comes to an article an earlier line wrote (a slug
        // given that is the `-2` an earlier title was given, say) would
        // undo it: refused, and its savepoint with it.
        let upserted = conn.transaction(|conn| {
            let (id, what) = article_writes::upsert(conn, &write)?;
            match id.and_then(|id| written.get(&id)) {
                Some(first) => Err(StoreError::invalid(
                    "slug",
                    format!(
                        "comes to the article line {first} wrote (`{}`); an article may \
                         appear once per import",
                        write.slug.as_str()
                    ),
                )),
                None => Ok((id, what)),
            }
        });
        match upserted {
            Ok((id, what)) => {
                if let Some(id) = id {
                    written.insert(id, line);
                }
                outcomes.push((line, Ok(what)));
            }
            Err(
                error @ (StoreError::Invalid(_)
                | StoreError::Conflict(_)
                | StoreError::SlugTaken(_)),
            ) => outcomes.push((line, Err(error))),
            Err(error) => return Err(error),
        }
    }
    Ok(outcomes)
}

/// The lines of an NDJSON body that hold something, trimmed, each with its
/// 1-based number; a line that is not UTF-8 is an error of its own, so that
/// one bad line costs only itself.
pub fn ndjson_lines(body: &[u8]) -> impl Iterator<Item = (usize, Result<&str, FieldError>)> {
    body.split(|byte| *byte == b'\n')
        .enumerate()
        .map(|(i, line)| {
            let line = std::str::from_utf8(line)
                .map(str::trim)
                .map_err(|_| FieldError::new(Location::Body, "(line)", "is not UTF-8"));
            (i + 1, line)
        })
        .filter(|(_, line)| line.as_ref().map_or(true, |line| !line.is_empty()))
}

pub fn line_errors(error: ApiError) -> Vec<FieldError> {
    match error {
        ApiError::Validation(errors) | ApiError::InvalidParameters(errors) => errors,
        ApiError::SlugTaken(detail) => vec![FieldError::new(Location::Body, "slug", detail)],
        other => vec![FieldError::new(Location::Body, "(line)", other.to_string())],
    }
}
