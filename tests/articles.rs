//! Public article reads: lists, filters, keyset paging, visibility rules.

mod common;

use std::collections::HashSet;

use common::{admin, article, create, get, seed_categories, send, test_app, test_app_with, titles};
use serde_json::json;

#[actix_web::test]
async fn an_article_is_found_by_id_and_by_slug_with_its_breadcrumb_tags_and_author() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    send(
        &app,
        admin("POST", "/api/v1/authors", json!({"name": "Mara Ellison"})),
    )
    .await;
    let mut input = article("Harbour strike enters second week", "world");
    input["tags"] = json!(["Port strike", "shipping"]);
    input["author"] = json!("mara-ellison");
    input["dateline"] = json!("ROTTERDAM");
    let created = create(&app, input).await;
    let id = created["id"].as_i64().unwrap();

    for address in [
        id.to_string(),
        "harbour-strike-enters-second-week".to_string(),
    ] {
        let reply = send(&app, get(&format!("/api/v1/articles/{address}"))).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let data = &reply.body["data"];
        assert_eq!(data["id"], id);
        assert_eq!(data["category"], json!({"slug": "world", "name": "World"}));
        let crumbs: Vec<&str> = data["breadcrumb"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(crumbs, ["Home", "News", "World"]);
        assert_eq!(
            data["tags"],
            json!([{"slug": "port-strike", "name": "Port strike"}, {"slug": "shipping", "name": "shipping"}])
        );
        assert_eq!(
            data["author"],
            json!({"slug": "mara-ellison", "name": "Mara Ellison"})
        );
        assert_eq!(data["dateline"], "ROTTERDAM");
        assert_eq!(data["word_count"], 10);
        assert_eq!(data["reading_time_minutes"], 1);
        assert_eq!(data["stats"]["views"], 0);
        assert_eq!(data["stats"]["reactions"]["very_good"], 0);
        assert!(
            data["body_html"]
                .as_str()
                .unwrap()
                .starts_with("<p>Harbour strike")
        );
        assert_eq!(reply.body["meta"], json!({}));
    }
}

#[actix_web::test]
async fn paging_returns_every_article_exactly_once_even_when_timestamps_tie() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let mut expected = HashSet::new();
    for i in 0..23 {
        let mut input = article(&format!("Tied story number {i}"), "news");
        // Three timestamps only, so most neighbours share one.
        input["published_at"] = json!(format!("2026-01-0{}T08:00:00Z", 1 + i % 3));
        expected.insert(create(&app, input).await["id"].as_i64().unwrap());
    }
    for sort in ["-published_at", "published_at"] {
        let mut seen = Vec::new();
        let mut uri = format!("/api/v1/articles?limit=5&sort={sort}");
        let mut pages = 0;
        loop {
            let reply = send(&app, get(&uri)).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            let items = reply.body["data"].as_array().unwrap();
            assert!(items.len() <= 5);
            seen.extend(items.iter().map(|a| {
                (
                    a["published_at"].as_str().unwrap().to_string(),
                    a["id"].as_i64().unwrap(),
                )
            }));
            pages += 1;
            match reply.body["meta"]["next_cursor"].as_str() {
                Some(_) => {
                    let link = reply
                        .header("link")
                        .expect("Link header on a page with a next page");
                    assert!(link.ends_with("rel=\"next\""), "{link}");
                    uri = link
                        .trim_start_matches('<')
                        .split('>')
                        .next()
                        .unwrap()
                        .to_string();
                    assert!(uri.contains("limit=5") && uri.contains("cursor="), "{uri}");
                }
                None => {
                    assert!(reply.header("link").is_none());
                    break;
                }
            }
        }
        assert_eq!(pages, 5);
        let first = send(
            &app,
            get(&format!("/api/v1/articles?limit=5&sort={sort}&total=true")),
        )
        .await;
        assert_eq!(first.body["meta"]["total"], 23);
        let ids: HashSet<i64> = seen.iter().map(|(_, id)| *id).collect();
        assert_eq!(ids.len(), seen.len(), "an article appeared twice ({sort})");
        assert_eq!(ids, expected, "{sort}");
        let mut ordered = seen.clone();
        ordered.sort();
        if sort == "-published_at" {
            ordered.reverse();
        }
        assert_eq!(seen, ordered, "{sort} order");
    }
}

#[actix_web::test]
async fn a_cursor_from_one_sort_is_refused_by_the_other() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    for i in 0..3 {
        create(&app, article(&format!("Story {i}"), "news")).await;
    }
    let reply = send(&app, get("/api/v1/articles?limit=1")).await;
    let cursor = reply.body["meta"]["next_cursor"]
        .as_str()
        .unwrap()
        .to_string();
    let reply = send(
        &app,
        get(&format!(
            "/api/v1/articles?limit=1&sort=published_at&cursor={cursor}"
        )),
    )
    .await;
    reply.assert_problem(400, &["cursor"]);
}

#[actix_web::test]
async fn filters_narrow_the_list_and_a_category_includes_its_subcategories() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    send(
        &app,
        admin("POST", "/api/v1/authors", json!({"name": "Daniel Osei"})),
    )
    .await;
    let mut a = article("Summit opens in Geneva", "world");
    a["tags"] = json!(["Diplomacy"]);
    a["source"] = json!("Frontpage Wire");
    a["published_at"] = json!("2026-02-01T10:00:00Z");
    create(&app, a).await;
    let mut b = article("Parliament passes the budget", "news");
    b["author"] = json!("daniel-osei");
    b["published_at"] = json!("2026-02-03T10:00:00Z");
    create(&app, b).await;
    let mut c = article("Cup final goes to penalties", "sport");
    c["tags"] = json!(["Diplomacy", "Football"]);
    c["published_at"] = json!("2026-02-05T10:00:00Z");
    create(&app, c).await;

    let cases = [
        (
            "category=news",
            vec!["Parliament passes the budget", "Summit opens in Geneva"],
        ),
        ("category=world", vec!["Summit opens in Geneva"]),
        (
            "category=home",
            vec![
                "Cup final goes to penalties",
                "Parliament passes the budget",
                "Summit opens in Geneva",
            ],
        ),
        (
            "tag=diplomacy",
            vec!["Cup final goes to penalties", "Summit opens in Geneva"],
        ),
        (
            "tag=diplomacy&category=sport",
            vec!["Cup final goes to penalties"],
        ),
        ("author=daniel-osei", vec!["Parliament passes the budget"]),
        ("source=Frontpage%20Wire", vec!["Summit opens in Geneva"]),
        (
            "published_after=2026-02-03T10:00:00Z",
            vec![
                "Cup final goes to penalties",
                "Parliament passes the budget",
            ],
        ),
        (
            "published_before=2026-02-03T10:00:00Z",
            vec!["Summit opens in Geneva"],
        ),
        (
            "published_after=2026-02-02T00:00:00%2B00:00&published_before=2026-02-04T00:00:00Z",
            vec!["Parliament passes the budget"],
        ),
    ];
    for (query, expected) in cases {
        let reply = send(
            &app,
            get(&format!("/api/v1/articles?{query}&total=true&limit=1")),
        )
        .await;
        assert_eq!(reply.status, 200, "{query}: {}", reply.body);
        assert_eq!(reply.body["meta"]["total"], expected.len(), "{query}");
        let reply = send(&app, get(&format!("/api/v1/articles?{query}"))).await;
        assert_eq!(titles(&reply.body), expected, "{query}");
        assert!(reply.body["meta"].get("total").is_none());
    }
}

#[actix_web::test]
async fn drafts_and_scheduled_articles_stay_invisible_until_due() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let mut draft = article("An unfinished draft", "news");
    draft["status"] = json!("draft");
    let draft = create(&app, draft).await;
    let mut scheduled = article("A story for next year", "news");
    scheduled["published_at"] = json!("2099-01-01T00:00:00Z");
    let scheduled = create(&app, scheduled).await;
    let public = create(&app, article("Already out", "news")).await;

    let list = send(&app, get("/api/v1/articles?category=news")).await;
    let ids: Vec<i64> = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [public["id"].as_i64().unwrap()]);
    for hidden in [&draft, &scheduled] {
        for address in [
            hidden["id"].to_string(),
            hidden["slug"].as_str().unwrap().to_string(),
        ] {
            send(&app, get(&format!("/api/v1/articles/{address}")))
                .await
                .assert_problem(404, &[]);
        }
    }

    // Once due (here: rescheduled into the past), it appears.
    let reply = send(
        &app,
        admin(
            "PATCH",
            &format!("/api/v1/articles/{}", scheduled["id"]),
            json!({"published_at": "2026-01-01T00:00:00Z"}),
        ),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        send(&app, get(&format!("/api/v1/articles/{}", scheduled["id"])))
            .await
            .status,
        200
    );
    // A draft keeps its publish time but stays hidden until its status changes.
    let reply = send(
        &app,
        admin(
            "PATCH",
            &format!("/api/v1/articles/{}", draft["id"]),
            json!({"status": "published"}),
        ),
    )
    .await;
    assert_eq!(reply.body["data"]["status"], "published");
    assert_eq!(
        send(&app, get(&format!("/api/v1/articles/{}", draft["id"])))
            .await
            .status,
        200
    );
}

#[actix_web::test]
async fn a_numeric_slug_can_never_shadow_an_id() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let created = create(&app, article("1984", "news")).await;
    assert_eq!(created["slug"], "article-1984");
    let mut input = article("Anything", "news");
    input["slug"] = json!("2024");
    send(&app, admin("POST", "/api/v1/articles", input))
        .await
        .assert_problem(422, &["slug"]);
}

#[actix_web::test]
async fn links_to_the_next_page_and_new_articles_keep_the_public_path() {
    // A proxy serves this server at https://example.com/news-api.
    let config = [("FRONTPAGE_PUBLIC_BASE_URL", "https://example.com/news-api")];
    let (app, _dir) = test_app_with(false, &config).await;
    seed_categories(&app).await;
    let made = send(
        &app,
        admin("POST", "/api/v1/articles", article("First of two", "news")),
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let location = made.header("location").unwrap();
    assert_eq!(
        location,
        format!("/news-api/api/v1/articles/{}", made.body["data"]["id"])
    );
    create(&app, article("Second of two", "news")).await;

    let page = send(&app, get("/api/v1/articles?limit=1")).await;
    let link = page.header("link").unwrap();
    assert!(
        link.starts_with("</news-api/api/v1/articles?limit=1&cursor="),
        "{link}"
    );
}

#[actix_web::test]
async fn an_article_alone_is_the_article_a_page_with_feeds_shows() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let mut input = article("\"Quoted\" harbour strike: é, <b>bold</b>", "world");
    input["body_html"] = json!("<p>Line one\nline \"two\" \\ é</p>");
    input["tags"] = json!(["Port strike"]);
    let id = create(&app, input).await["id"].as_i64().unwrap();
    let view = common::public(
        "POST",
        &format!("/api/v1/articles/{id}/views"),
        json!({"reader": "r1"}),
    );
    assert_eq!(send(&app, view).await.status, 200);

    // The first read loads the article from the store, the second finds it
    // cached; a page with a feed serialises it with the feed.
    let first = send(&app, get(&format!("/api/v1/articles/{id}"))).await;
    let again = send(&app, get(&format!("/api/v1/articles/{id}"))).await;
    let with_ranking = send(&app, get(&format!("/api/v1/articles/{id}?include=ranking"))).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body, again.body);
    assert_eq!(first.body["meta"], json!({}));
    assert_eq!(first.body["data"]["stats"]["views"], 1);
    assert_eq!(
        first.body["data"]["body_html"],
        "<p>Line one\nline \"two\" \\ é</p>"
    );
    let mut page = with_ranking.body["data"].clone();
    assert!(page["ranking"].is_array(), "{}", with_ranking.body);
    page.as_object_mut().unwrap().remove("ranking");
    assert_eq!(first.body["data"], page);
}

/// A link made with an article's old slug is sent on to its address now
/// (308, with the query), for the article and its Related list, until
/// another article takes the slug; an unpublished article's old slug says
/// nothing, nor does a deleted one's.
#[actix_web::test]
async fn an_old_slug_is_sent_on_to_the_article_until_another_takes_it() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let first = create(&app, article("Storm closes bridge", "news")).await;
    let uri = format!("/api/v1/articles/{}", first["id"]);
    let reply = send(
        &app,
        admin("PATCH", &uri, json!({"slug": "storm-closes-two-bridges"})),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    let reply = send(
        &app,
        get("/api/v1/articles/storm-closes-bridge?include=related"),
    )
    .await;
    assert_eq!(reply.status, 308);
    assert_eq!(
        reply.header("location"),
        Some("/api/v1/articles/storm-closes-two-bridges?include=related")
    );
    let reply = send(&app, get("/api/v1/articles/storm-closes-bridge/related")).await;
    assert_eq!(reply.status, 308);
    assert_eq!(
        reply.header("location"),
        Some("/api/v1/articles/storm-closes-two-bridges/related")
    );
    // Renamed back: its own slug again, and the other one old.
    send(
        &app,
        admin("PATCH", &uri, json!({"slug": "storm-closes-bridge"})),
    )
    .await;
    assert_eq!(
        send(&app, get("/api/v1/articles/storm-closes-bridge"))
            .await
            .status,
        200
    );
    let reply = send(&app, get("/api/v1/articles/storm-closes-two-bridges")).await;
    assert_eq!(
        reply.header("location"),
        Some("/api/v1/articles/storm-closes-bridge")
    );

    // Another article takes the old slug: it is that article's.
    let other = create(&app, article("Storm closes two bridges", "news")).await;
    assert_eq!(other["slug"], "storm-closes-two-bridges");
    let reply = send(&app, get("/api/v1/articles/storm-closes-two-bridges")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["data"]["id"], other["id"]);

    // Another site's addresses given as old slugs are sent on too; one
    // that is another article's slug now is refused.
    let mut moved_in = article("Moved from the old site", "news");
    moved_in["old_slugs"] = json!(["news/2019/harbour", "harbour-story-2019"]);
    let reply = send(&app, admin("POST", "/api/v1/articles", moved_in.clone())).await;
    reply.assert_problem(422, &["old_slugs[0]"]);
    moved_in["old_slugs"] = json!(["harbour-story-2019"]);
    create(&app, moved_in).await;
    let reply = send(&app, get("/api/v1/articles/harbour-story-2019")).await;
    assert_eq!(
        reply.header("location"),
        Some("/api/v1/articles/moved-from-the-old-site")
    );
    let reply = send(
        &app,
        admin(
            "PATCH",
            "/api/v1/articles/moved-from-the-old-site",
            json!({"old_slugs": ["storm-closes-two-bridges"]}),
        ),
    )
    .await;
    reply.assert_problem(422, &["old_slugs"]);

    // Unpublished, then deleted: the old slug is a 404 like any other.
    send(&app, admin("PATCH", &uri, json!({"slug": "storm-update"}))).await;
    send(&app, admin("PATCH", &uri, json!({"status": "draft"}))).await;
    send(&app, get("/api/v1/articles/storm-closes-bridge"))
        .await
        .assert_problem(404, &[]);
    send(&app, admin("DELETE", &uri, serde_json::Value::Null)).await;
    send(&app, get("/api/v1/articles/storm-closes-bridge"))
        .await
        .assert_problem(404, &[]);
}
