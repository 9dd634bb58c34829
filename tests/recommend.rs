//! The Recommendation feed: co-reading, exclusions, the category cap, cold
//! start, freshness after a view and after a move to another category, bad
//! input, and the article page's `include=recommendations`.

mod common;

use chrono::{Duration, Utc};
use common::{
    admin, app_with, article, config, create, eventually, eventually_within, get, public,
    seed_categories, send, test_app, test_app_with,
};
use serde_json::{Value, json};

/// A published article in `category`, `hours_ago` old.
fn published(title: &str, category: &str, hours_ago: i64) -> Value {
    let mut input = article(title, category);
    input["published_at"] = json!((Utc::now() - Duration::hours(hours_ago)).to_rfc3339());
    input
}

async fn view<S, B>(app: &S, reader: &str, id: i64)
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    let uri = format!("/api/v1/articles/{id}/views");
    let reply = send(app, public("POST", &uri, json!({"reader": reader}))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

async fn recommendations<S, B>(app: &S, query: &str) -> Value
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    let reply = send(app, get(&format!("/api/v1/recommendations?{query}"))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

/// How long new co-reading may take to reach a neighbour list kept in
/// memory: the background refresh runs every 5 s (see the README).
const CO_READING_REFRESH: std::time::Duration = std::time::Duration::from_secs(8);

fn ids(body: &Value) -> Vec<i64> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["article"]["id"].as_i64().unwrap())
        .collect()
}

#[actix_web::test]
async fn readers_of_the_same_article_say_what_to_read_next() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let id = |body: Value| body["id"].as_i64().unwrap();
    let a = id(create(&app, published("Budget vote tonight", "news", 5)).await);
    let b = id(create(&app, published("Storm warning for the coast", "news", 6)).await);
    let c = id(create(&app, published("What the budget means for you", "world", 4)).await);
    let d = id(create(&app, published("Cup final preview", "sport", 3)).await);
    for reader in ["r1", "r2", "r3", "r4", "r5"] {
        view(&app, reader, a).await;
        view(&app, reader, c).await;
    }
    // A few readers of something else, so that C is not simply the most read.
    for reader in ["s1", "s2"] {
        view(&app, reader, d).await;
    }
    view(&app, "me", a).await;
    view(&app, "me", b).await;

    // The reader's own views count at once. What others read after A
    // reaches A's neighbour list at once when the list is made on first
    // use; a list computed ahead at start, which can race with the views
    // above, is made again within the 5 s refresh (see the README).
    let also_read_first = |body: &Value| body["data"][0]["reason"]["type"] == "also_read";
    let body = eventually_within(
        &app,
        "/api/v1/recommendations?reader=me",
        CO_READING_REFRESH,
        also_read_first,
    )
    .await;
    assert_eq!(body["meta"]["strategy"], "personalized");
    assert_eq!(body["meta"]["reader"], "me");
    assert_eq!(body["meta"]["limit"], 8);
    let list = ids(&body);
    assert_eq!(list.first(), Some(&c), "{body}");
    assert_eq!(
        body["data"][0]["reason"],
        json!({"type": "also_read", "because_of": a})
    );
    assert!(body["data"][0]["score"].as_f64().unwrap() > 0.0);
    assert!(
        !list.contains(&a) && !list.contains(&b),
        "read articles: {list:?}"
    );

    // The article being read is never recommended.
    let body = recommendations(&app, &format!("reader=me&context={c}")).await;
    assert!(!ids(&body).contains(&c), "{body}");
    assert_eq!(body["meta"]["context"], c);
}

#[actix_web::test]
async fn unpublished_articles_are_never_recommended() {
    let (app, _dir) = test_app(false).await;
    an_unpublished_article_is_not_recommended(&app, true).await;
}

/// The same when where the article is filed came from the store, not from
/// an article the server keeps: what the first list learnt of it is
/// forgotten with the write.
#[actix_web::test]
async fn unpublished_articles_are_never_recommended_when_the_store_said_where_they_are() {
    let (app, _dir) = test_app_with(false, &[("FRONTPAGE_ARTICLE_CACHE_MB", "0")]).await;
    an_unpublished_article_is_not_recommended(&app, false).await;
}

/// Readers go from one article to another; once the other is put back to
/// draft, it is no longer recommended. `read_first` reads it once before,
/// so that the server keeps the article (and where it is filed).
async fn an_unpublished_article_is_not_recommended<S, B>(app: &S, read_first: bool)
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    seed_categories(app).await;
    let a = create(app, published("Budget vote tonight", "news", 5)).await["id"]
        .as_i64()
        .unwrap();
    let c = create(app, published("What the budget means", "news", 4)).await;
    let (c, c_slug) = (
        c["id"].as_i64().unwrap(),
        c["slug"].as_str().unwrap().to_string(),
    );
    for reader in ["r1", "r2", "r3"] {
        view(app, reader, a).await;
        view(app, reader, c).await;
    }
    view(app, "me", a).await;
    if read_first {
        let reply = send(app, get(&format!("/api/v1/articles/{c}"))).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    assert!(ids(&recommendations(app, "reader=me").await).contains(&c));

    let uri = format!("/api/v1/articles/{c_slug}");
    let reply = send(app, admin("PATCH", &uri, json!({"status": "draft"}))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let list = ids(&recommendations(app, "reader=me").await);
    assert!(!list.contains(&c), "a draft was recommended: {list:?}");
}

#[actix_web::test]
async fn an_article_published_just_now_is_a_fresh_candidate_at_once() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    for i in 0..3 {
        create(&app, published(&format!("Story {i}"), "news", i + 1)).await;
    }
    let before = ids(&recommendations(&app, "reader=newcomer&limit=3").await);
    assert_eq!(before.len(), 3);

    let newest = create(&app, published("Breaking now", "news", 0)).await["id"]
        .as_i64()
        .unwrap();
    let body = recommendations(&app, "reader=newcomer&limit=3").await;
    assert_eq!(ids(&body)[0], newest, "{body}");
    assert_eq!(body["data"][0]["reason"]["type"], "fresh", "{body}");
}

#[actix_web::test]
async fn no_category_takes_more_than_its_share() {
    let (app, _dir) = test_app_with(false, &[("FRONTPAGE_RECOMMEND_CATEGORY_SHARE", "0.5")]).await;
    seed_categories(&app).await;
    let seed = create(&app, published("Opening day", "news", 10)).await["id"]
        .as_i64()
        .unwrap();
    let mut sport = Vec::new();
    for i in 0..6 {
        let id = create(&app, published(&format!("Match report {i}"), "sport", i)).await["id"]
            .as_i64()
            .unwrap();
        sport.push(id);
    }
    let mut world = Vec::new();
    for i in 0..3 {
        let id = create(&app, published(&format!("Summit day {i}"), "world", 20 + i)).await["id"]
            .as_i64()
            .unwrap();
        world.push(id);
    }
    // Readers of the seed go on to read every sport story, and only one
    // world story: sport would fill the list without the cap.
    for reader in ["r1", "r2", "r3", "r4"] {
        view(&app, reader, seed).await;
        for id in &sport {
            view(&app, reader, *id).await;
        }
    }
    view(&app, "r1", world[0]).await;
    view(&app, "me", seed).await;

    let body = recommendations(&app, "reader=me&limit=4").await;
    assert_eq!(body["meta"]["max_per_category"], 2);
    let items = body["data"].as_array().unwrap();
    assert_eq!(items.len(), 4, "{body}");
    let in_sport = items
        .iter()
        .filter(|item| item["article"]["category"]["slug"] == "sport")
        .count();
    assert_eq!(in_sport, 2, "{body}");
}

#[actix_web::test]
async fn a_new_reader_gets_a_cold_start_list_and_a_view_counts_at_once() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let mut ids_made = Vec::new();
    for i in 0..5 {
        let id = create(&app, published(&format!("Story {i}"), "news", i + 1)).await["id"]
            .as_i64()
            .unwrap();
        ids_made.push(id);
    }
    view(&app, "someone", ids_made[4]).await;

    let body = recommendations(&app, "reader=newcomer&limit=3").await;
    assert_eq!(body["meta"]["strategy"], "cold_start");
    let first = ids(&body);
    assert_eq!(first.len(), 3, "{body}");
    for item in body["data"].as_array().unwrap() {
        let kind = item["reason"]["type"].as_str().unwrap();
        assert!(["trending", "fresh"].contains(&kind), "{item}");
    }

    // After one view the reader has a history, and the article is gone.
    view(&app, "newcomer", first[0]).await;
    let body = recommendations(&app, "reader=newcomer&limit=3").await;
    assert_eq!(body["meta"]["strategy"], "personalized");
    assert!(!ids(&body).contains(&first[0]), "{body}");
}

/// A reader who has read nearly everything new still gets a full list, of
/// older articles, and a list longer than the sources' candidates is full
/// too, while there are articles to fill it.
#[actix_web::test]
async fn a_list_is_filled_with_older_articles_when_the_sources_run_short() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let categories = ["news", "world", "sport"];
    let mut made = Vec::new();
    for i in 0..40 {
        let input = published(
            &format!("Story number {i}"),
            categories[i % 3],
            i as i64 + 1,
        );
        made.push(create(&app, input).await["id"].as_i64().unwrap());
    }
    // The 36 newest read: every fresh and every trending candidate.
    for id in &made[..36] {
        view(&app, "heavy", *id).await;
    }
    let body = recommendations(&app, "reader=heavy&limit=8").await;
    let mut got = ids(&body);
    got.sort_unstable();
    assert_eq!(got, made[36..].to_vec(), "{body}");
    for item in body["data"].as_array().unwrap() {
        assert_eq!(item["reason"]["type"], "fresh", "{item}");
    }

    let body = recommendations(&app, "reader=newcomer&limit=50").await;
    let scores: Vec<f64> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["score"].as_f64().unwrap())
        .collect();
    assert!(
        scores.windows(2).all(|pair| pair[0] >= pair[1]),
        "{scores:?}"
    );
    let mut got = ids(&body);
    assert_eq!(got.len(), 40, "{body}");
    got.sort_unstable();
    got.dedup();
    assert_eq!(got.len(), 40, "an article twice: {body}");
}

#[actix_web::test]
async fn bad_parameters_are_problems() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let reply = send(&app, get("/api/v1/recommendations")).await;
    reply.assert_problem(400, &["reader"]);
    let reply = send(&app, get("/api/v1/recommendations?reader=not%20ok")).await;
    reply.assert_problem(400, &["reader"]);
    let reply = send(&app, get("/api/v1/recommendations?reader=ok&limit=51")).await;
    reply.assert_problem(400, &["limit"]);
    let reply = send(&app, get("/api/v1/recommendations?reader=ok&context=nope")).await;
    assert_eq!(reply.status, 404, "{}", reply.body);
}

#[actix_web::test]
async fn the_article_page_includes_the_readers_recommendations() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let a = create(&app, published("Budget vote tonight", "news", 5)).await["id"]
        .as_i64()
        .unwrap();
    let c = create(&app, published("What the budget means", "news", 4)).await["id"]
        .as_i64()
        .unwrap();
    for reader in ["r1", "r2"] {
        view(&app, reader, a).await;
        view(&app, reader, c).await;
    }
    let uri = format!("/api/v1/articles/{a}?include=related,ranking,recommendations&reader=me");
    // As in `readers_of_the_same_article_say_what_to_read_next`: a list
    // computed ahead at start is made again within the 5 s refresh.
    let body = eventually_within(&app, &uri, CO_READING_REFRESH, |body| {
        body["data"]["recommendations"][0]["reason"]["type"] == "also_read"
    })
    .await;
    let items = body["data"]["recommendations"].as_array().unwrap();
    assert_eq!(items[0]["article"]["id"], c, "{body}");
    assert_eq!(
        items[0]["reason"],
        json!({"type": "also_read", "because_of": a})
    );
    assert!(items.iter().all(|item| item["article"]["id"] != a));
    assert_eq!(body["meta"]["recommendations"]["context"], a);
    assert!(body["data"]["related"].is_array());
    assert!(body["data"]["ranking"].is_array());
    // The counter's label too: the seed page shows `veryGood! (186)`.
    assert_eq!(
        body["meta"]["reaction_kinds"][0],
        json!({"key": "very_good", "label": "veryGood!", "position": 1})
    );
    let alone = send(&app, get(&format!("/api/v1/articles/{a}"))).await;
    assert!(alone.body["meta"].get("reaction_kinds").is_none());

    let uri = format!("/api/v1/articles/{a}?include=recommendations");
    send(&app, get(&uri)).await.assert_problem(400, &["reader"]);
}

#[actix_web::test]
async fn an_article_moved_to_another_category_trends_there_once_the_move_returns() {
    let dir = tempfile::TempDir::new().unwrap();
    let id = |body: Value| body["id"].as_i64().unwrap();
    let story = {
        let app = app_with(config(&dir, false)).await;
        seed_categories(&app).await;
        // One reader reads sport, one news; the story everyone reads is
        // filed in news.
        for i in 0..3 {
            let read = id(create(&app, published(&format!("Match {i}"), "sport", 3)).await);
            view(&app, "fan", read).await;
        }
        let read = id(create(&app, published("Council budget", "news", 4)).await);
        view(&app, "local", read).await;
        let mut input = published("Harbour strike", "news", 2);
        input["body_html"] = json!("<p>Dockworkers walked out at dawn.</p>");
        let story = id(create(&app, input).await);
        for reader in 0..5 {
            view(&app, &format!("reader-{reader}"), story).await;
        }
        story
    };
    let reason_for_story = |body: &Value| {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|item| item["article"]["id"] == story)
            .map(|item| item["reason"].clone())
    };
    // A start sums the week's trending articles with the views above (then
    // the background thread every minute); once it has loaded the history,
    // the news reader is shown the story trending in news.
    let app = app_with(config(&dir, false)).await;
    let trending_in_news = json!({"type": "trending_in", "category": "news"});
    eventually(
        &app,
        "/api/v1/recommendations?reader=local&limit=5",
        |body| reason_for_story(body) == Some(trending_in_news.clone()),
    )
    .await;

    let uri = format!("/api/v1/articles/{story}");
    let reply = send(&app, admin("PATCH", &uri, json!({"category": "sport"}))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    // Without a new sum, the next lists file it under sport.
    let body = recommendations(&app, "reader=fan&limit=5").await;
    let trending_in_sport = json!({"type": "trending_in", "category": "sport"});
    assert_eq!(
        reason_for_story(&body),
        Some(trending_in_sport.clone()),
        "{body}"
    );
    let body = recommendations(&app, "reader=local&limit=5").await;
    assert!(
        reason_for_story(&body).is_none_or(|reason| reason["type"] != "trending_in"),
        "{body}"
    );

    // Unpublished, it is in no list; published again, it trends as before.
    for (status, shown) in [("draft", false), ("published", true)] {
        let reply = send(&app, admin("PATCH", &uri, json!({"status": status}))).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let body = recommendations(&app, "reader=fan&limit=5").await;
        let reason = reason_for_story(&body);
        assert_eq!(reason.is_some(), shown, "{status}: {body}");
        if shown {
            assert_eq!(reason, Some(trending_in_sport.clone()), "{body}");
        }
    }
}
