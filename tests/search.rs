//! Full-text search: `q` on the article list ranks by relevance, highlights
//! a snippet, combines with filters, pages, stays in sync with every write,
//! and turns bad input into problems.

mod common;

use common::{admin, article, create, get, seed_categories, send, test_app, titles};
use serde_json::{Value, json};

fn with_body(title: &str, category: &str, body: &str) -> Value {
    let mut input = article(title, category);
    input["body_html"] = json!(body);
    input
}

#[actix_web::test]
async fn matches_come_most_relevant_first_with_a_highlighted_snippet() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    create(
        &app,
        with_body(
            "Harbour strike enters second week",
            "news",
            "<p>Dockworkers stay out.</p>",
        ),
    )
    .await;
    create(
        &app,
        with_body(
            "Budget talks",
            "news",
            "<p>Talks stalled as a <b>strike</b> loomed over the budget.</p>",
        ),
    )
    .await;
    create(
        &app,
        with_body(
            "Cup final tonight",
            "sport",
            "<p>Nothing about work stoppages.</p>",
        ),
    )
    .await;
    // Enough articles without the word for it to tell documents apart.
    for i in 0..5 {
        create(&app, article(&format!("Weather {i}"), "news")).await;
    }

    let reply = send(&app, get("/api/v1/articles?q=strike&total=true")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        titles(&reply.body),
        ["Harbour strike enters second week", "Budget talks"]
    );
    assert_eq!(reply.body["meta"]["total"], 2);
    let first = &reply.body["data"][0]["search"];
    let second = &reply.body["data"][1]["search"];
    assert!(first["score"].as_f64().unwrap() > second["score"].as_f64().unwrap());
    assert!(
        first["snippet"]
            .as_str()
            .unwrap()
            .contains("<mark>strike</mark>"),
        "{first}"
    );
    // The body is searched as text: its markup is not in the snippet.
    let snippet = second["snippet"].as_str().unwrap();
    assert!(
        snippet.contains("<mark>strike</mark>") && !snippet.contains("<b>"),
        "{snippet}"
    );

    // Words match their stems, whatever their case.
    let reply = send(&app, get("/api/v1/articles?q=Strikes")).await;
    assert_eq!(titles(&reply.body).len(), 2, "{}", reply.body);
    // Every word must match; the last one also as a prefix.
    let reply = send(&app, get("/api/v1/articles?q=harbour%20str")).await;
    assert_eq!(titles(&reply.body), ["Harbour strike enters second week"]);
    // Plain lists carry no search field.
    let reply = send(&app, get("/api/v1/articles")).await;
    assert!(reply.body["data"][0].get("search").is_none());
}

#[actix_web::test]
async fn search_combines_with_filters_and_pages() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    for i in 0..3 {
        create(
            &app,
            with_body(&format!("Storm warning {i}"), "world", "<p>Storm.</p>"),
        )
        .await;
    }
    create(
        &app,
        with_body("Storm delays the match", "sport", "<p>Storm.</p>"),
    )
    .await;

    // `news` includes its sub-category `world`.
    let reply = send(&app, get("/api/v1/articles?q=storm&category=news&limit=2")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let mut seen = titles(&reply.body);
    let cursor = reply.body["meta"]["next_cursor"]
        .as_str()
        .unwrap()
        .to_string();
    let next = send(
        &app,
        get(&format!(
            "/api/v1/articles?q=storm&category=news&limit=2&cursor={cursor}"
        )),
    )
    .await;
    assert_eq!(next.status, 200, "{}", next.body);
    assert!(next.body["meta"]["next_cursor"].is_null());
    seen.extend(titles(&next.body));
    seen.sort();
    assert_eq!(
        seen,
        ["Storm warning 0", "Storm warning 1", "Storm warning 2"]
    );

    let reply = send(&app, get("/api/v1/articles?q=storm&category=sport")).await;
    assert_eq!(titles(&reply.body), ["Storm delays the match"]);

    // A cursor belongs to its query and its filters.
    let reply = send(
        &app,
        get(&format!("/api/v1/articles?q=rain&cursor={cursor}")),
    )
    .await;
    reply.assert_problem(400, &["cursor"]);
    let reply = send(
        &app,
        get(&format!(
            "/api/v1/articles?q=storm&category=sport&cursor={cursor}"
        )),
    )
    .await;
    reply.assert_problem(400, &["cursor"]);
}

#[actix_web::test]
async fn the_index_follows_every_write() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let search = |q: &str| get(&format!("/api/v1/articles?q={q}"));
    let made = create(&app, article("Volcano erupts", "world")).await;
    let slug = made["slug"].as_str().unwrap().to_string();
    assert_eq!(
        titles(&send(&app, search("volcano")).await.body),
        ["Volcano erupts"]
    );

    let uri = format!("/api/v1/articles/{slug}");
    let reply = send(&app, admin("PATCH", &uri, json!({"title": "Ash cloud grounds flights", "summary": "Flights grounded.", "body_html": "<p>Flights grounded.</p>"}))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(titles(&send(&app, search("volcano")).await.body).is_empty());
    assert_eq!(
        titles(&send(&app, search("ash")).await.body),
        ["Ash cloud grounds flights"]
    );

    // Drafts are indexed but never found by the public.
    let reply = send(&app, admin("PATCH", &uri, json!({"status": "draft"}))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(titles(&send(&app, search("ash")).await.body).is_empty());

    let reply = send(&app, admin("DELETE", &uri, Value::Null)).await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    let made = create(&app, article("Ash on the runway", "world")).await;
    assert_eq!(
        titles(&send(&app, search("ash")).await.body),
        ["Ash on the runway"]
    );
    assert!(made["id"].is_number());
}

#[actix_web::test]
async fn query_syntax_is_never_interpreted_and_text_is_escaped() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    create(
        &app,
        with_body(
            "Markup in text",
            "news",
            "<p>Write &lt;script&gt; then strike.</p>",
        ),
    )
    .await;
    for q in [
        "%22strike",
        "strike%20OR%20NEAR(",
        "strike*%20AND%20-x",
        "title%3Astrike",
    ] {
        let reply = send(&app, get(&format!("/api/v1/articles?q={q}"))).await;
        assert_eq!(reply.status, 200, "q={q}: {}", reply.body);
    }
    let reply = send(&app, get("/api/v1/articles?q=strike")).await;
    let snippet = reply.body["data"][0]["search"]["snippet"].as_str().unwrap();
    assert!(snippet.contains("&lt;script&gt;"), "{snippet}");
    assert!(!snippet.contains("<script"), "{snippet}");
}

#[actix_web::test]
async fn bad_search_parameters_are_problems() {
    let (app, _dir) = test_app(false).await;
    for (query, field) in [
        ("q=", "q"),
        ("q=%21%21%21", "q"),
        (&*format!("q={}", "a".repeat(201)), "q"),
        ("q=strike&sort=published_at", "sort"),
        ("q=strike&cursor=nonsense", "cursor"),
        ("q=strike&limit=0", "limit"),
    ] {
        let reply = send(&app, get(&format!("/api/v1/articles?{query}"))).await;
        reply.assert_problem(400, &[field]);
    }
}
