//! Syndication feeds: RSS 2.0, Atom and JSON Feed 1.1 of the latest articles,
//! a category and the ranking, each parsed by a real feed parser.

mod common;

use actix_web::test;
use common::{article, create, get, public, seed_categories, send, test_app_with};
use serde_json::{Value, json};

const BASE: &str = "https://news.example.com";

fn published(title: &str, category: &str, day: u32) -> serde_json::Value {
    let mut input = article(title, category);
    input["published_at"] = json!(format!("2026-01-{day:02}T12:00:00Z"));
    input
}

/// The raw body and headers of a GET.
async fn fetch<S, B>(app: &S, uri: &str) -> (u16, actix_web::http::header::HeaderMap, Vec<u8>)
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    let response = test::call_service(app, get(uri)).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, test::read_body(response).await.to_vec())
}

#[actix_web::test]
async fn the_latest_articles_parse_as_rss_atom_and_json_feed() {
    let (app, _dir) = test_app_with(false, &[("FRONTPAGE_PUBLIC_BASE_URL", BASE)]).await;
    seed_categories(&app).await;
    create(&app, published("Oldest story", "news", 1)).await;
    create(&app, published("Middle story", "sport", 2)).await;
    create(&app, published("Newest story", "world", 3)).await;
    let mut draft = published("Secret draft", "news", 4);
    draft["status"] = json!("draft");
    create(&app, draft).await;

    for (extension, content_type) in [
        ("rss", "application/rss+xml; charset=utf-8"),
        ("atom", "application/atom+xml; charset=utf-8"),
        ("json", "application/feed+json; charset=utf-8"),
    ] {
        let (status, headers, body) = fetch(&app, &format!("/feeds/latest.{extension}")).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert_eq!(headers.get("content-type").unwrap(), content_type);
        assert!(headers.get("etag").is_some());
        let cache = headers.get("cache-control").unwrap().to_str().unwrap();
        assert!(cache.starts_with("public, max-age="), "{cache}");

        let feed = feed_rs::parser::parse(&body[..])
            .unwrap_or_else(|error| panic!("{extension}: {error}"));
        // Each names its own address, where a reader given a copy polls
        // (JSON Feed's `feed_url`, which feed_rs reads as a link of no
        // `rel`).
        let mut self_links: Vec<String> = feed
            .links
            .iter()
            .filter(|link| link.rel.as_deref() == Some("self"))
            .map(|link| link.href.clone())
            .collect();
        if extension == "json" {
            let json: Value = serde_json::from_slice(&body).unwrap();
            self_links.push(json["feed_url"].as_str().unwrap().to_string());
        }
        assert_eq!(
            self_links,
            [format!("{BASE}/feeds/latest.{extension}")],
            "{extension}"
        );
        let titles: Vec<String> = feed
            .entries
            .iter()
            .map(|entry| entry.title.as_ref().unwrap().content.clone())
            .collect();
        assert_eq!(
            titles,
            ["Newest story", "Middle story", "Oldest story"],
            "{extension}"
        );
        for entry in &feed.entries {
            let link = &entry.links[0].href;
            assert!(
                link.starts_with(&format!("{BASE}/api/v1/articles/")),
                "{link}"
            );
            assert!(entry.published.is_some(), "{extension}: no date");
            let content = entry.content.as_ref().and_then(|c| c.body.as_deref());
            assert!(
                content.unwrap_or_default().contains("<p>"),
                "{extension}: no body"
            );
        }
        assert!(feed.title.unwrap().content.contains("latest"));
    }
}

#[actix_web::test]
async fn a_category_feed_has_its_subtree_and_unknown_ones_are_problems() {
    let (app, _dir) = test_app_with(false, &[("FRONTPAGE_PUBLIC_BASE_URL", BASE)]).await;
    seed_categories(&app).await;
    create(&app, published("Home news", "news", 1)).await;
    create(&app, published("Abroad", "world", 2)).await;
    create(&app, published("Match day", "sport", 3)).await;

    let (status, _, body) = fetch(&app, "/feeds/category/news.atom").await;
    assert_eq!(status, 200);
    let feed = feed_rs::parser::parse(&body[..]).unwrap();
    let titles: Vec<String> = feed
        .entries
        .iter()
        .map(|entry| entry.title.as_ref().unwrap().content.clone())
        .collect();
    assert_eq!(titles, ["Abroad", "Home news"]);
    let self_link = feed
        .links
        .iter()
        .find(|l| l.rel.as_deref() == Some("self"))
        .unwrap();
    assert_eq!(self_link.href, format!("{BASE}/feeds/category/news.atom"));
    // Titled by the category's name, not its slug.
    let title = feed.title.unwrap().content;
    assert_eq!(title, "Frontpage: News");

    send(&app, get("/feeds/category/nowhere.rss"))
        .await
        .assert_problem(404, &[]);
    let unknown = send(&app, get("/feeds/latest.xml")).await;
    unknown.assert_problem(404, &[]);
    // It says which extensions there are.
    let detail = unknown.body["detail"].as_str().unwrap();
    assert!(detail.contains("`rss`, `atom`, `json`"), "{detail}");
}

#[actix_web::test]
async fn the_ranking_feed_puts_the_most_read_first() {
    let (app, _dir) = test_app_with(false, &[("FRONTPAGE_PUBLIC_BASE_URL", BASE)]).await;
    seed_categories(&app).await;
    let now = chrono::Utc::now();
    let mut ids = Vec::new();
    for (i, title) in ["Quiet story", "Popular story"].into_iter().enumerate() {
        let mut input = article(title, "news");
        input["published_at"] = json!((now - chrono::Duration::hours(2 + i as i64)).to_rfc3339());
        ids.push(create(&app, input).await["id"].as_i64().unwrap());
    }
    for _ in 0..3 {
        let uri = format!("/api/v1/articles/{}/views", ids[1]);
        assert_eq!(
            send(&app, public("POST", &uri, json!({}))).await.status,
            200
        );
    }
    let (status, _, body) = fetch(&app, "/feeds/ranking.json").await;
    assert_eq!(status, 200);
    let feed = feed_rs::parser::parse(&body[..]).unwrap();
    assert_eq!(
        feed.entries[0].title.as_ref().unwrap().content,
        "Popular story"
    );
}

#[actix_web::test]
async fn characters_xml_cannot_carry_never_break_a_feed() {
    let (app, _dir) = test_app_with(false, &[("FRONTPAGE_PUBLIC_BASE_URL", BASE)]).await;
    seed_categories(&app).await;
    let mut input = published("Form feed", "news", 1);
    input["body_markdown"] = json!("para one\u{c}still para, escape \u{1b} and \u{fffe}");
    input.as_object_mut().unwrap().remove("body_html");
    create(&app, input).await;
    let mut input = published("Vertical tab", "news", 2);
    input["body_html"] = json!("<p>one\u{b}two</p>");
    create(&app, input).await;
    for extension in ["rss", "atom"] {
        let (status, _, body) = fetch(&app, &format!("/feeds/latest.{extension}")).await;
        assert_eq!(status, 200);
        let feed = feed_rs::parser::parse(&body[..])
            .unwrap_or_else(|error| panic!("{extension}: {error}"));
        let bodies: Vec<String> = feed
            .entries
            .iter()
            .map(|entry| {
                entry
                    .content
                    .as_ref()
                    .unwrap()
                    .body
                    .as_ref()
                    .unwrap()
                    .trim()
                    .to_string()
            })
            .collect();
        assert_eq!(
            bodies,
            ["<p>one two</p>", "<p>para one still para, escape  and </p>"],
            "{extension}"
        );
    }
    // A title carrying one is refused, not stored.
    let mut input = published("Title\u{fffe}", "news", 3);
    input["slug"] = json!("noncharacter");
    let reply = send(&app, common::admin("POST", "/api/v1/articles", input)).await;
    reply.assert_problem(422, &["title"]);
}

#[actix_web::test]
async fn an_item_keeps_its_id_when_its_slug_changes() {
    let (app, _dir) = test_app_with(false, &[("FRONTPAGE_PUBLIC_BASE_URL", BASE)]).await;
    seed_categories(&app).await;
    let id = create(&app, published("First headline", "news", 1)).await["id"]
        .as_i64()
        .unwrap();
    let ids = |body: &[u8]| -> Vec<(String, String)> {
        feed_rs::parser::parse(body)
            .unwrap()
            .entries
            .into_iter()
            .map(|entry| (entry.id, entry.links[0].href.clone()))
            .collect()
    };
    let mut before = Vec::new();
    for extension in ["rss", "atom", "json"] {
        let (_, _, body) = fetch(&app, &format!("/feeds/latest.{extension}")).await;
        before.push(ids(&body));
    }
    let reply = send(
        &app,
        common::admin(
            "PATCH",
            &format!("/api/v1/articles/{id}"),
            json!({"slug": "corrected-headline"}),
        ),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    for (extension, before) in ["rss", "atom", "json"].into_iter().zip(before) {
        let (_, _, body) = fetch(&app, &format!("/feeds/latest.{extension}")).await;
        let after = ids(&body);
        let stable = format!("{BASE}/api/v1/articles/{id}");
        assert_eq!(before[0].0, stable, "{extension}");
        assert_eq!(after[0].0, stable, "{extension}");
        // The link follows the slug; the id does not.
        assert_eq!(
            after[0].1,
            format!("{BASE}/api/v1/articles/corrected-headline"),
            "{extension}"
        );
    }
}

#[actix_web::test]
async fn script_in_an_article_never_reaches_a_feed() {
    let (app, _dir) = test_app_with(false, &[("FRONTPAGE_PUBLIC_BASE_URL", BASE)]).await;
    seed_categories(&app).await;
    let mut input = published("Payloads", "news", 1);
    input["body_html"] = json!(concat!(
        r#"<p onclick="steal()">Text<script>alert(1)</script>"#,
        r#"<a href="javascript:alert(1)">link</a><img src="x" onerror="alert(1)">"#,
        r#"<svg onload="alert(1)"><use href="data:image/svg+xml,x"/></svg>"#,
        r#"<iframe src="https://evil.example"></iframe><style>*{}</style></p>"#
    ));
    create(&app, input).await;
    for extension in ["rss", "atom", "json"] {
        let (_, _, body) = fetch(&app, &format!("/feeds/latest.{extension}")).await;
        let feed = feed_rs::parser::parse(&body[..]).unwrap();
        let entry = &feed.entries[0];
        let html = entry.content.as_ref().and_then(|c| c.body.clone()).unwrap();
        let html = html.to_ascii_lowercase();
        for banned in [
            "<script",
            "onclick",
            "onerror",
            "onload",
            "javascript:",
            "<svg",
            "<iframe",
            "<style",
        ] {
            assert!(
                !html.contains(banned),
                "{extension}: {banned} survived in {html}"
            );
        }
        assert!(html.contains("text"), "{extension}: {html}");
    }
}

#[actix_web::test]
async fn a_summary_is_text_in_every_feed() {
    let (app, _dir) = test_app_with(false, &[("FRONTPAGE_PUBLIC_BASE_URL", BASE)]).await;
    seed_categories(&app).await;
    let mut input = published("Browsers", "news", 1);
    let summary = "Chrome drops the <marquee> and <blink> elements & more.";
    input["summary"] = json!(summary);
    create(&app, input).await;

    for extension in ["rss", "atom", "json"] {
        let (_, _, body) = fetch(&app, &format!("/feeds/latest.{extension}")).await;
        let feed = feed_rs::parser::parse(&body[..]).unwrap();
        let shown = feed.entries[0].summary.as_ref().unwrap();
        // RSS readers take a description as HTML: the summary is escaped
        // there, so it reads as the text it is.
        let text = match extension {
            "rss" => html_escape::decode_html_entities(&shown.content).into_owned(),
            _ => shown.content.clone(),
        };
        assert_eq!(text, summary, "{extension}");
    }
    let (_, _, body) = fetch(&app, "/feeds/latest.rss").await;
    let rss = String::from_utf8(body).unwrap();
    assert!(rss.contains("&lt;marquee&gt;"), "{rss}");
    assert!(!rss.contains("<marquee>"), "{rss}");
}

#[actix_web::test]
async fn an_empty_feed_keeps_its_etag_between_polls() {
    // Every poll renders the feed: none is served from memory.
    let config = [
        ("FRONTPAGE_PUBLIC_BASE_URL", BASE),
        ("FRONTPAGE_RESPONSE_CACHE_SECS", "0"),
    ];
    let (app, _dir) = test_app_with(false, &config).await;
    seed_categories(&app).await;
    // JSON Feed gives no time of the feed's own.
    for extension in ["rss", "atom"] {
        let uri = format!("/feeds/category/sport.{extension}");
        let (status, first, _) = fetch(&app, &uri).await;
        assert_eq!(status, 200);
        std::thread::sleep(std::time::Duration::from_millis(1_100));
        let (_, second, _) = fetch(&app, &uri).await;
        assert_eq!(first.get("etag"), second.get("etag"), "{extension}");
    }
}

/// An article's lead image reaches every feed: Media RSS in RSS, an
/// enclosure link in Atom, `image` in JSON Feed.
#[actix_web::test]
async fn the_lead_image_is_in_every_feed() {
    let (app, _dir) = test_app_with(false, &[("FRONTPAGE_PUBLIC_BASE_URL", BASE)]).await;
    seed_categories(&app).await;
    let image = "https://images.example.com/lead.jpg";
    let mut input = published("Pictured story", "news", 1);
    input["image_url"] = json!(image);
    create(&app, input).await;

    let (_, _, rss) = fetch(&app, "/feeds/latest.rss").await;
    let feed = feed_rs::parser::parse(&rss[..]).unwrap();
    let media: Vec<String> = feed.entries[0]
        .media
        .iter()
        .flat_map(|media| &media.content)
        .filter_map(|content| content.url.as_ref().map(|url| url.to_string()))
        .collect();
    assert_eq!(media, [image], "{}", String::from_utf8_lossy(&rss));

    let (_, _, atom) = fetch(&app, "/feeds/latest.atom").await;
    let feed = feed_rs::parser::parse(&atom[..]).unwrap();
    let enclosure = feed.entries[0]
        .links
        .iter()
        .find(|link| link.rel.as_deref() == Some("enclosure"))
        .unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(&atom)));
    assert_eq!(enclosure.href, image);
    assert_eq!(enclosure.media_type.as_deref(), Some("image/jpeg"));

    let (_, _, json_feed) = fetch(&app, "/feeds/latest.json").await;
    let json_feed: Value = serde_json::from_slice(&json_feed).unwrap();
    assert_eq!(json_feed["items"][0]["image"], image);
}

/// A scheduled article is edited before it is due: once it is, every feed
/// says it changed when it was published, not before.
#[actix_web::test]
async fn a_scheduled_article_is_modified_no_earlier_than_published_in_feeds() {
    let (app, _dir) = test_app_with(false, &[("FRONTPAGE_PUBLIC_BASE_URL", BASE)]).await;
    seed_categories(&app).await;
    let due = chrono::Utc::now() + chrono::TimeDelta::seconds(2);
    let mut input = article("Scheduled story", "news");
    input["published_at"] = json!(due.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    create(&app, input).await;
    std::thread::sleep(std::time::Duration::from_millis(2_600));

    let (_, _, atom) = fetch(&app, "/feeds/latest.atom").await;
    let feed = feed_rs::parser::parse(&atom[..]).unwrap();
    let entry = &feed.entries[0];
    assert!(
        entry.updated >= entry.published && entry.published.is_some(),
        "{}",
        String::from_utf8_lossy(&atom)
    );
    assert!(feed.updated >= entry.published);

    let (_, _, json_feed) = fetch(&app, "/feeds/latest.json").await;
    let json_feed: Value = serde_json::from_slice(&json_feed).unwrap();
    let item = &json_feed["items"][0];
    assert_eq!(item["date_modified"], item["date_published"], "{item}");
}
