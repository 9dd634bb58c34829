//! Full-text search: an FTS5 index of each article's title, summary and
//! plain-text body, ranked by BM25, written in the same transaction as the
//! article it indexes.
//!
//! Readers' words never reach FTS5's query syntax: [`match_expression`]
//! quotes each word, so any input is a valid query that means "all these
//! words" (the last one also as a prefix, for search-as-you-type).

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sql_types::{Double, Integer, Text};
use diesel::sqlite::SqliteConnection;
use unicode_segmentation::UnicodeSegmentation;

use super::StoreResult;
use super::in_ids::InIdsExt;
use super::schema::{articles, search_pending};
use crate::content;

/// Most words of a query that count.
pub const MAX_QUERY_WORDS: usize = 12;
/// Matches looked at per search, best first: filters and pages apply
/// within them.
pub const MAX_MATCHES: i64 = 5_000;
/// Words of context in a snippet.
const SNIPPET_WORDS: i32 = 16;
/// Around the matched words of a snippet, in place of `<mark>` until the
/// text is escaped: characters no article text contains.
const OPEN_MARK: char = '\u{E000}';
const CLOSE_MARK: char = '\u{E001}';

/// The FTS5 expression for a reader's query, or `None` when it has no words.
pub fn match_expression(query: &str) -> Option<String> {
    let words = query_words(query);
    let last = words.len().checked_sub(1)?;
    let terms: Vec<String> = words
        .iter()
        .enumerate()
        .map(|(i, word)| {
            // A word holds no quote (unicode_words splits on them), so
            // quoting makes it a plain term whatever it is.
            let prefix = if i == last { "*" } else { "" };
            format!("\"{}\"{prefix}", without_possessive(word))
        })
        .collect();
    Some(terms.join(" "))
}

/// A query's words as the index has them: Unicode words, but a run of
/// them with nothing between one word (the index's `unicode61` tokenizer
/// splits only at what is not a letter or digit, where Unicode's word
/// breaks also part each Chinese or Japanese character: `東京` is one token
/// to the index, two words to Unicode). At most [`MAX_QUERY_WORDS`].
fn query_words(query: &str) -> Vec<&str> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (at, word) in query.unicode_word_indices() {
        match runs.last_mut() {
            Some((_, end)) if *end == at => *end = at + word.len(),
            _ => runs.push((at, at + word.len())),
        }
    }
    runs.into_iter()
        .take(MAX_QUERY_WORDS)
        .map(|(start, end)| &query[start..end])
        .collect()
}

/// A word without an English possessive ending (`Castlebridge's`):
/// quoted whole, it is the phrase "castlebridge s" to FTS5, which misses
/// every article that names Castlebridge otherwise. (A trailing apostrophe,
/// as in `Reyes'`, is never part of a word.)
fn without_possessive(word: &str) -> &str {
    let stem = ["'s", "\u{2019}s", "'S", "\u{2019}S"]
        .iter()
        .find_map(|ending| word.strip_suffix(ending));
    stem.filter(|stem| !stem.is_empty()).unwrap_or(word)
}

/// (Re)indexes article `id`.
pub fn index(
    conn: &mut SqliteConnection,
    id: i32,
    title: &str,
    summary: &str,
    body_html: &str,
) -> StoreResult<()> {
    remove(conn, id)?;
    diesel::sql_query(
        "INSERT INTO article_search (rowid, title, summary, body) VALUES (?, ?, ?, ?)",
    )
    .bind::<Integer, _>(id)
    .bind::<Text, _>(title)
    .bind::<Text, _>(summary)
    .bind::<Text, _>(content::plain_text(body_html))
    .execute(conn)?;
    Ok(())
}

/// Takes article `id` out of the index.
pub fn remove(conn: &mut SqliteConnection, id: i32) -> StoreResult<()> {
    diesel::sql_query("DELETE FROM article_search WHERE rowid = ?")
        .bind::<Integer, _>(id)
        .execute(conn)?;
    Ok(())
}

/// Indexes the articles waiting in `search_pending` (stored before search
/// existed, or by a bulk fill), a chunk per transaction; returns how many.
pub fn index_pending(conn: &mut SqliteConnection) -> StoreResult<usize> {
    let mut indexed = 0;
    loop {
        // Immediate: the chunk reads and then writes, and a deferred
        // transaction would fail at once, without waiting, if another
        // process wrote in between.
        match conn.immediate_transaction(index_pending_chunk)? {
            (0, _) => return Ok(indexed),
            (_, done) => indexed += done,
        }
    }
}

/// Indexes the next chunk of pending articles and takes them off the list;
/// returns how many ids it took and how many articles it indexed (ids of
/// articles deleted since are dropped).
pub fn index_pending_chunk(conn: &mut SqliteConnection) -> StoreResult<(usize, usize)> {
    const CHUNK: i64 = 2_000;
    let ids: Vec<i32> = search_pending::table
        .select(search_pending::article_id)
        .order(search_pending::article_id)
        .limit(CHUNK)
        .load(conn)?;
    let rows: Vec<(i32, String, String, String)> = articles::table
        .filter(articles::id.in_ids(&ids))
        .select((
            articles::id,
            articles::title,
            articles::summary,
            articles::body_html,
        ))
        .load(conn)?;
    for (id, title, summary, body) in &rows {
        index(conn, *id, title, summary, body)?;
    }
    diesel::delete(search_pending::table.filter(search_pending::article_id.in_ids(&ids)))
        .execute(conn)?;
    Ok((ids.len(), rows.len()))
}

/// Queues article `id` to be indexed by [`index_pending`]: for bulk fills,
/// where indexing each article in its own small step costs many times more.
pub fn defer(conn: &mut SqliteConnection, id: i32) -> StoreResult<()> {
    diesel::insert_or_ignore_into(search_pending::table)
        .values(search_pending::article_id.eq(id))
        .execute(conn)?;
    Ok(())
}

#[derive(QueryableByName)]
struct Match {
    #[diesel(sql_type = Integer)]
    id: i32,
    #[diesel(sql_type = Double)]
    score: f64,
}

/// The best [`MAX_MATCHES`] articles (of any status) for `expression`, best
/// first, with their relevance (higher is better): BM25 with the column
/// weights the migration set (title 10, summary 4, body 1).
pub fn matches(conn: &mut SqliteConnection, expression: &str) -> StoreResult<Vec<(i32, f64)>> {
    let rows: Vec<Match> = diesel::sql_query(
        "SELECT rowid AS id, -rank AS score FROM article_search \
         WHERE article_search MATCH ? ORDER BY rank, rowid LIMIT ?",
    )
    .bind::<Text, _>(expression)
    .bind::<diesel::sql_types::BigInt, _>(MAX_MATCHES)
    .load(conn)?;
    Ok(rows.into_iter().map(|m| (m.id, m.score)).collect())
}

#[derive(QueryableByName)]
struct Snippet {
    #[diesel(sql_type = Integer)]
    id: i32,
    #[diesel(sql_type = Text)]
    snippet: String,
}

/// For each of `ids`, an HTML excerpt of its best-matching field with the
/// matched words in `<mark>`; everything else in it is escaped text.
pub fn snippets(
    conn: &mut SqliteConnection,
    expression: &str,
    ids: &[i32],
) -> StoreResult<HashMap<i32, String>> {
    let ids = serde_json::to_string(ids).expect("integers serialise");
    let rows: Vec<Snippet> = diesel::sql_query(format!(
        "SELECT rowid AS id, snippet(article_search, -1, '{OPEN_MARK}', '{CLOSE_MARK}', '…', \
         {SNIPPET_WORDS}) AS snippet FROM article_search \
         WHERE article_search MATCH ? AND rowid IN (SELECT value FROM json_each(?))"
    ))
    .bind::<Text, _>(expression)
    .bind::<Text, _>(ids)
    .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|row| (row.id, marked_html(&row.snippet)))
        .collect())
}

/// Escapes a snippet's text and turns its marks into `<mark>` elements.
fn marked_html(snippet: &str) -> String {
    html_escape::encode_text(snippet)
        .replace(OPEN_MARK, "<mark>")
        .replace(CLOSE_MARK, "</mark>")
}

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection;
    use diesel_migrations::MigrationHarness;

    use super::*;

    #[test]
    fn articles_stored_before_search_existed_are_indexed_on_open() {
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        conn.run_pending_migrations(crate::db::MIGRATIONS).unwrap();
        // As the migration leaves an article that was already stored.
        conn.batch_execute(
            "INSERT INTO categories (id, slug, name, position) VALUES (1, 'news', 'News', 0);
             INSERT INTO articles (id, slug, title, summary, body_html, category_id, status,
                 published_at, created_at, updated_at, word_count)
             VALUES (7, 'old', 'Old harbour story', 'From before.', '<p>Cranes &amp; ships.</p>',
                 1, 'published', '2026-01-01 00:00:00', '2026-01-01 00:00:00',
                 '2026-01-01 00:00:00', 3);
             INSERT INTO search_pending (article_id) VALUES (7), (8);",
        )
        .unwrap();
        assert_eq!(index_pending(&mut conn).unwrap(), 1);
        let found = matches(&mut conn, &match_expression("cranes ships").unwrap()).unwrap();
        assert_eq!(found.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [7]);
        assert_eq!(index_pending(&mut conn).unwrap(), 0);
    }

    #[test]
    fn any_input_becomes_quoted_words_with_a_prefix_on_the_last() {
        assert_eq!(
            match_expression("port strike").as_deref(),
            Some("\"port\" \"strike\"*")
        );
        assert_eq!(
            match_expression("\"NEAR(a b)\" OR -x*").as_deref(),
            Some("\"NEAR\" \"a\" \"b\" \"OR\" \"x\"*")
        );
        assert_eq!(match_expression("  ...  "), None);
        assert_eq!(
            match_expression("Castlebridge's mayor’s").as_deref(),
            Some("\"Castlebridge\" \"mayor\"*")
        );
        assert_eq!(match_expression("O'Brien").as_deref(), Some("\"O'Brien\"*"));
        // Characters Unicode parts, the index does not.
        assert_eq!(
            match_expression("東京 ニュース").as_deref(),
            Some("\"東京\" \"ニュース\"*")
        );
        let long = "word ".repeat(40);
        assert_eq!(
            match_expression(&long).unwrap().matches('"').count(),
            2 * MAX_QUERY_WORDS
        );
    }

    #[test]
    fn words_of_chinese_and_japanese_are_found_whole() {
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        conn.run_pending_migrations(crate::db::MIGRATIONS).unwrap();
        index(&mut conn, 3, "東京 ニュース", "", "<p>会議が開かれた。</p>").unwrap();
        for query in ["東京", "東京 ニュース", "会議が開かれた"] {
            let found = matches(&mut conn, &match_expression(query).unwrap()).unwrap();
            assert_eq!(found.len(), 1, "{query}");
        }
    }

    #[test]
    fn snippets_escape_text_and_keep_only_their_own_marks() {
        assert_eq!(
            marked_html("a <b> & \u{E000}port\u{E001} strike"),
            "a &lt;b&gt; &amp; <mark>port</mark> strike"
        );
    }
}
