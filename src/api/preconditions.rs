//! Conditional writes (RFC 9110 §13): `If-Match`, `If-Unmodified-Since`
//! and `If-None-Match` on an article's PUT, PATCH and DELETE, so that an editor's change to a
//! version someone has changed since is refused (412) rather than written
//! over theirs.
//!
//! `If-Match` compares with the `ETag` the article's GET answers now, which
//! follows its view and reaction counts too. `If-Unmodified-Since`
//! compares with its `updated_at`, which only content writes move, and
//! each at least a second on (see `article_writes::replace`): for an edit,
//! it is the exact condition.

use std::time::SystemTime;

use actix_web::HttpRequest;
use actix_web::http::header::{self, HttpDate};
use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};

use super::articles::load_article;
use super::page;
use crate::db::articles::ArticleKey;
use crate::error::{ApiError, AppResult};
use crate::http_cache;
use crate::state::AppState;

/// The preconditions a write states.
#[derive(Debug)]
pub struct Preconditions {
    /// The entity tags of `If-Match` as sent (`*` among them, maybe).
    if_match: Option<Vec<String>>,
    /// `If-Unmodified-Since`, when it is a date.
    unmodified_since: Option<NaiveDateTime>,
    /// The entity tags of `If-None-Match` as sent (`*` among them, maybe).
    if_none_match: Option<Vec<String>>,
}

/// The entity tags of header `name` as sent, when the request has it (an
/// empty one names none).
fn tags_of(req: &HttpRequest, name: header::HeaderName) -> Option<Vec<String>> {
    let stated = req.headers().contains_key(&name);
    let tags = req
        .headers()
        .get_all(name)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|tag| !tag.is_empty())
        .map(str::to_string)
        .collect();
    stated.then_some(tags)
}

/// An article as the preconditions see it.
#[derive(Debug, Clone)]
pub struct Version {
    /// The `ETag` that `GET /articles/{id}` answers now.
    pub tag: String,
    /// When its content last changed (`Last-Modified`).
    pub updated_at: NaiveDateTime,
}

impl Preconditions {
    /// What `req` states; `None` when it states nothing.
    pub fn of(req: &HttpRequest) -> Option<Self> {
        // An empty If-Match names no version, so none matches (a client
        // whose ETag was lost must not write unconditionally).
        let if_match = tags_of(req, header::IF_MATCH);
        let if_none_match = tags_of(req, header::IF_NONE_MATCH);
        // A date that does not parse is ignored (RFC 9110 §13.1.4).
        let unmodified_since = req
            .headers()
            .get(header::IF_UNMODIFIED_SINCE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<HttpDate>().ok())
            .map(|date| DateTime::<Utc>::from(SystemTime::from(date)).naive_utc());
        let stated = if_match.is_some() || unmodified_since.is_some() || if_none_match.is_some();
        stated.then_some(Self {
            if_match,
            unmodified_since,
            if_none_match,
        })
    }

    /// Whether they hold for `current`, the article as it is now (`None`
    /// when there is none). `If-Match` holds when it names the article's
    /// tag, or is `*` and there is an article; only without it does
    /// `If-Unmodified-Since` count, and it holds unless the article changed
    /// after that second.
    pub fn hold(&self, current: Option<&Version>) -> bool {
        self.holding(current).is_some()
    }

    /// [`Preconditions::hold`], saying what held: `Some(true)` when a
    /// version was named (a tag or a date), `Some(false)` for `*` or for no
    /// article to compare a date with. `If-None-Match` (RFC 9110 §13.2.2,
    /// after the other two) fails when the article exists and it is `*` or
    /// names its tag (weakly: `W/` counts).
    fn holding(&self, current: Option<&Version>) -> Option<bool> {
        let named = self.matching(current)?;
        if let (Some(tags), Some(current)) = (&self.if_none_match, current)
            && tags.iter().any(|tag| {
                tag == "*" || http_cache::names(tag.trim_start_matches("W/"), &current.tag)
            })
        {
            return None;
        }
        Some(named)
    }

    /// `If-Match`, or without it `If-Unmodified-Since`, as
    /// [`Preconditions::holding`] says.
    fn matching(&self, current: Option<&Version>) -> Option<bool> {
        if let Some(tags) = &self.if_match {
            let current = current?;
            if tags
                .iter()
                .any(|tag| tag != "*" && http_cache::names(tag, &current.tag))
            {
                return Some(true);
            }
            return tags.iter().any(|tag| tag == "*").then_some(false);
        }
        match (self.unmodified_since, current) {
            (Some(since), Some(current)) => {
                (current.updated_at.trunc_subsecs(0) <= since).then_some(true)
            }
            _ => Some(false),
        }
    }
}

/// Checks `req`'s preconditions against article `key` as it is now; a 412
/// when they fail. Returns when its content last changed, for the write to
/// check again as it runs (see [`crate::db::article_writes::unchanged_since`]):
/// `None` when the request names no version (nothing, or `If-Match: *`,
/// which only asks that the article exist), or there is no such article.
pub async fn check(
    state: &AppState,
    req: &HttpRequest,
    key: &ArticleKey,
) -> AppResult<Option<NaiveDateTime>> {
    let Some(preconditions) = Preconditions::of(req) else {
        return Ok(None);
    };
    let current = version(state, key.clone())?;
    match preconditions.holding(current.as_ref()) {
        None => Err(ApiError::PreconditionFailed(
            "The article is not the version this request names: it has changed since, \
             or does not exist. Read it again and resend with its new ETag or \
             Last-Modified."
                .into(),
        )),
        Some(named) => Ok(current.filter(|_| named).map(|current| current.updated_at)),
    }
}

/// Article `key` as `GET /articles/{id}` shows an editor now: the tag of
/// that body, and its `updated_at`.
fn version(state: &AppState, key: ArticleKey) -> AppResult<Option<Version>> {
    let Some(article) = load_article(state, key)? else {
        return Ok(None);
    };
    Ok(Some(Version {
        tag: http_cache::entity_tag(&page::alone(&article).to_bytes()),
        updated_at: article.summary().updated_at.naive_utc(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;
    use chrono::NaiveDate;

    fn stated(headers: &[(&str, &str)]) -> Option<Preconditions> {
        let mut req = TestRequest::default();
        for (name, value) in headers {
            req = req.append_header((*name, *value));
        }
        Preconditions::of(&req.to_http_request())
    }

    fn version() -> Version {
        Version {
            tag: "\"abc\"".into(),
            updated_at: NaiveDate::from_ymd_opt(2026, 12, 5)
                .unwrap()
                .and_hms_milli_opt(10, 0, 0, 400)
                .unwrap(),
        }
    }

    #[test]
    fn if_match_holds_for_the_current_tag_any_encoding_of_it_or_a_star() {
        let current = version();
        let holds = |value: &str| stated(&[("if-match", value)]).unwrap().hold(Some(&current));
        assert!(holds("\"abc\""));
        assert!(holds("\"old\", \"abc-gzip\""));
        assert!(holds("*"));
        assert!(!holds("\"old\""));
        assert!(!holds("W/\"abc\""));
        assert!(!holds(""));
        assert!(!holds(" , "));
        assert!(!stated(&[("if-match", "*")]).unwrap().hold(None));
        // A tag names a version, which the write checks again as it runs;
        // `*` asks only that the article exist.
        let named = |value: &str| {
            stated(&[("if-match", value)])
                .unwrap()
                .holding(Some(&current))
        };
        assert_eq!(named("\"abc\""), Some(true));
        assert_eq!(named("*"), Some(false));
        // If-None-Match refuses the version it names, or any for `*`.
        let none = |value: &str| {
            stated(&[("if-none-match", value)])
                .unwrap()
                .hold(Some(&current))
        };
        assert!(none("\"old\""));
        assert!(!none("W/\"abc\""));
        assert!(!none("*"));
        assert!(stated(&[("if-none-match", "*")]).unwrap().hold(None));
        // If-Match decides alone when both are sent.
        let both = stated(&[
            ("if-match", "\"abc\""),
            ("if-unmodified-since", "Mon, 01 Jan 2024 00:00:00 GMT"),
        ]);
        assert!(both.unwrap().hold(Some(&current)));
    }

    #[test]
    fn if_unmodified_since_holds_unless_the_article_changed_after_that_second() {
        let current = version();
        let holds = |value: &str| {
            stated(&[("if-unmodified-since", value)])
                .unwrap()
                .hold(Some(&current))
        };
        assert!(holds("Sat, 05 Dec 2026 10:00:00 GMT"));
        assert!(!holds("Sat, 05 Dec 2026 09:59:59 GMT"));
        // No article: the write answers for itself (404).
        let since = stated(&[("if-unmodified-since", "Sat, 05 Dec 2026 09:59:59 GMT")]);
        assert!(since.unwrap().hold(None));
        assert!(stated(&[("if-unmodified-since", "yesterday")]).is_none());
        assert!(stated(&[]).is_none());
    }
}
