//! `frontpage eval related`: measures the Related engine on a labelled
//! corpus. Each document is imported into a fresh temporary store through
//! the same validation and write path as the API, the engine builds every
//! list as the server does, and each query document's stored list is scored:
//! an item is relevant when it has the query's label. Labels never reach the
//! engine (every document goes into one category, without tags), so they
//! cannot leak into the lists.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use chrono::Duration;
use serde::Deserialize;

use super::Engine;
use crate::api::article_input::ArticleInput;
use crate::api::articles::ArticleStatus;
use crate::api::input::Checked;
use crate::db::{self, Db, StoreResult, article_writes};

/// Documents written per transaction.
const PER_TRANSACTION: usize = 1_000;
/// The category every document goes into.
const CATEGORY: &str = "news";

/// One line of a labelled corpus.
#[derive(Debug, Deserialize)]
struct Line {
    id: serde_json::Value,
    category: String,
    text: String,
    #[serde(default)]
    title: Option<String>,
    /// `train` or `test`; when present, only test documents query.
    #[serde(default)]
    split: Option<String>,
}

/// What an evaluation measured.
#[derive(Debug, Clone)]
pub struct Report {
    pub documents: usize,
    pub skipped: usize,
    pub queries: usize,
    pub k: usize,
    pub precision: f64,
    pub ndcg: f64,
    pub import_seconds: f64,
    pub index_seconds: f64,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let per_article_ms = self.index_seconds * 1000.0 / self.documents.max(1) as f64;
        writeln!(
            f,
            "documents        {} ({} skipped as invalid)",
            self.documents, self.skipped
        )?;
        writeln!(f, "queries          {}", self.queries)?;
        writeln!(f, "precision@{:<6} {:.4}", self.k, self.precision)?;
        writeln!(f, "nDCG@{:<11} {:.4}", self.k, self.ndcg)?;
        writeln!(f, "import           {:.1} s", self.import_seconds)?;
        write!(
            f,
            "index and lists  {:.1} s ({per_article_ms:.2} ms per article)",
            self.index_seconds
        )
    }
}

/// Imports `dataset` into a temporary store and scores the top `k` of each
/// query document's Related list; `max_queries` caps the queries.
pub fn run(dataset: &Path, k: usize, max_queries: Option<usize>) -> anyhow::Result<Report> {
    let file =
        std::fs::File::open(dataset).with_context(|| format!("opening {}", dataset.display()))?;
    let mut lines = Vec::new();
    for (number, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Line = serde_json::from_str(&line)
            .with_context(|| format!("{} line {}", dataset.display(), number + 1))?;
        lines.push(parsed);
    }
    let dir = tempfile::TempDir::new()?;
    let db = Db::open(&dir.path().join("eval.db"), 2)?;
    db.write_blocking(crate::demo::seed_taxonomy)?;

    let started = Instant::now();
    let now = db::now();
    let mut labels: HashMap<i32, String> = HashMap::new();
    let mut queries: Vec<i32> = Vec::new();
    let mut skipped = 0;
    let mut pending = Vec::new();
    for (number, line) in lines.into_iter().enumerate() {
        let input = ArticleInput {
            slug: Some(format!("eval-{number}")),
            // Without a title the line number stands in: numbers are not
            // terms, so it adds no words (an id like `news20-7` would add
            // one word to every document).
            title: line
                .title
                .filter(|title| !title.trim().is_empty())
                .unwrap_or_else(|| format!("#{}", number + 1)),
            body_html: Some(format!("<p>{}</p>", html_escape::encode_text(&line.text))),
            category: CATEGORY.into(),
            status: Some(Checked::Valid(ArticleStatus::Published)),
            published_at: Some(Checked::Valid((now - Duration::days(1)).and_utc())),
            ..ArticleInput::default()
        };
        match input.validate(now) {
            Ok(write) => pending.push((write, line.category, line.split, line.id)),
            Err(_) => skipped += 1,
        }
        if pending.len() == PER_TRANSACTION {
            store(&db, std::mem::take(&mut pending), &mut labels, &mut queries)?;
        }
    }
    store(&db, pending, &mut labels, &mut queries)?;
    let import_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let engine = Engine::default();
    let documents = db.read_blocking(|conn| engine.rebuild(conn, now, &[]))?;
    let index_seconds = started.elapsed().as_secs_f64();

    if let Some(max) = max_queries {
        queries.truncate(max);
    }
    let (mut precision, mut ndcg) = (0.0, 0.0);
    for id in &queries {
        let label = &labels[id];
        let relevant: Vec<bool> = engine
            .list(*id)
            .map(|list| {
                list.iter()
                    .take(k)
                    .map(|item| &labels[&item.id] == label)
                    .collect()
            })
            .unwrap_or_default();
        let available = labels.values().filter(|other| *other == label).count() - 1;
        precision += relevant.iter().filter(|hit| **hit).count() as f64 / k as f64;
        let dcg: f64 = relevant
            .iter()
            .enumerate()
            .filter(|(_, hit)| **hit)
            .map(|(rank, _)| 1.0 / (rank as f64 + 2.0).log2())
            .sum();
        let ideal: f64 = (0..k.min(available))
            .map(|rank| 1.0 / (rank as f64 + 2.0).log2())
            .sum();
        if ideal > 0.0 {
            ndcg += dcg / ideal;
        }
    }
    let count = queries.len().max(1) as f64;
    Ok(Report {
        documents,
        skipped,
        queries: queries.len(),
        k,
        precision: precision / count,
        ndcg: ndcg / count,
        import_seconds,
        index_seconds,
    })
}

type Pending = (
    article_writes::ArticleWrite,
    String,
    Option<String>,
    serde_json::Value,
);

/// Writes a batch of documents; remembers each one's label, and whether it
/// queries (test documents, or all when the corpus has no split).
fn store(
    db: &Db,
    batch: Vec<Pending>,
    labels: &mut HashMap<i32, String>,
    queries: &mut Vec<i32>,
) -> anyhow::Result<()> {
    let stored = db.write_blocking(move |conn| {
        batch
            .into_iter()
            .map(|(write, label, split, _)| {
                Ok((article_writes::create(conn, &write)?, label, split))
            })
            .collect::<StoreResult<Vec<_>>>()
    })?;
    for (id, label, split) in stored {
        if split.as_deref().is_none_or(|split| split == "test") {
            queries.push(id);
        }
        labels.insert(id, label);
    }
    Ok(())
}
