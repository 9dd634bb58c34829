//! Bad input of every kind is a problem+json answer naming what is wrong,
//! never a 500 and never a partial write.

mod common;

use actix_web::test::TestRequest;
use common::{ADMIN, admin, article, create, get, seed_categories, send, test_app};
use serde_json::json;

#[actix_web::test]
async fn unknown_routes_are_404_problems() {
    let (app, _dir) = test_app(false).await;
    for uri in [
        "/nope",
        "/api/v1/nope",
        "/api/v2/articles",
        "/api/v1/articles/1/unknown",
    ] {
        send(&app, get(uri)).await.assert_problem(404, &[]);
    }
}

#[actix_web::test]
async fn wrong_methods_are_405_problems_with_allow() {
    let (app, _dir) = test_app(false).await;
    let cases = [
        ("DELETE", "/api/v1/articles", "GET, HEAD, POST"),
        ("DELETE", "/healthz", "GET, HEAD"),
        ("PATCH", "/api/v1/tags", "GET, HEAD, POST"),
        (
            "POST",
            "/api/v1/articles/42",
            "GET, HEAD, PUT, PATCH, DELETE",
        ),
        ("PUT", "/api/v1/categories", "GET, HEAD, POST"),
        ("POST", "/openapi.json", "GET, HEAD"),
    ];
    for (method, uri, allow) in cases {
        let req = TestRequest::default()
            .method(method.parse().unwrap())
            .uri(uri)
            .to_request();
        let reply = send(&app, req).await;
        reply.assert_problem(405, &[]);
        let mut got: Vec<&str> = reply.header("allow").unwrap().split(", ").collect();
        let mut want: Vec<&str> = allow.split(", ").chain(["OPTIONS"]).collect();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want, "{method} {uri}");

        // Asked without a browser's preflight headers, OPTIONS says the same.
        let req = TestRequest::default()
            .method(actix_web::http::Method::OPTIONS)
            .uri(uri)
            .to_request();
        let reply = send(&app, req).await;
        assert_eq!(reply.status, 204, "OPTIONS {uri}");
        let mut told: Vec<&str> = reply.header("allow").unwrap().split(", ").collect();
        told.sort_unstable();
        assert_eq!(told, want, "OPTIONS {uri}");
    }
    let req = TestRequest::default()
        .method(actix_web::http::Method::OPTIONS)
        .uri("/api/v1/nothing-here")
        .to_request();
    send(&app, req).await.assert_problem(404, &[]);
    // As any method there, to the path without the slash.
    let req = TestRequest::default()
        .method(actix_web::http::Method::OPTIONS)
        .uri("/api/v1/articles/")
        .to_request();
    let moved = send(&app, req).await;
    assert_eq!(moved.status, 308);
    assert_eq!(moved.header("location"), Some("/api/v1/articles"));
}

#[actix_web::test]
async fn bad_query_parameters_are_400_problems_naming_the_parameter() {
    let (app, _dir) = test_app(false).await;
    let cases = [
        ("/api/v1/articles?limit=0", "limit"),
        ("/api/v1/articles?limit=101", "limit"),
        ("/api/v1/articles?limit=ten", "limit"),
        ("/api/v1/articles?limit=-1", "limit"),
        ("/api/v1/articles?sort=popular", "sort"),
        ("/api/v1/articles?cursor=garbage", "cursor"),
        ("/api/v1/articles?cursor=eyJ0IjoxfQ", "cursor"),
        (
            "/api/v1/articles?published_after=yesterday",
            "published_after",
        ),
        (
            "/api/v1/articles?published_before=2026-13-01T00:00:00Z",
            "published_before",
        ),
        ("/api/v1/articles?limit=1&limit=2", "limit"),
        ("/api/v1/tags?limit=1000", "limit"),
        ("/api/v1/authors?cursor=%00", "cursor"),
        // An empty name (a form's unset field) is not a name nothing has,
        // and a name nothing has is not a list with nothing in it.
        ("/api/v1/articles?category=", "category"),
        ("/api/v1/articles?tag=", "tag"),
        ("/api/v1/articles?author=", "author"),
        ("/api/v1/articles?source=", "source"),
        ("/api/v1/ranking?category=", "category"),
        ("/api/v1/recommendations?reader=r-1&context=", "context"),
        ("/api/v1/articles?category=nowhere", "category"),
        ("/api/v1/articles?tag=nowhere", "tag"),
        ("/api/v1/articles?q=storm&author=nobody", "author"),
        ("/api/v1/ranking?category=nowhere", "category"),
    ];
    for (uri, name) in cases {
        let reply = send(&app, get(uri)).await;
        reply.assert_problem(400, &[name]);
        assert_eq!(reply.body["errors"][0]["location"], "query", "{uri}");
    }
    // Every name nothing has, and every empty one, in one answer.
    send(
        &app,
        get("/api/v1/articles?category=nowhere&tag=nothing&author=nobody"),
    )
    .await
    .assert_problem(400, &["category", "tag", "author"]);
    send(
        &app,
        get("/api/v1/articles?category=&tag=&author=nobody&source="),
    )
    .await
    .assert_problem(400, &["category", "tag", "author", "source"]);
    // Every parameter that does not read, in one answer (a range, as
    // `limit`'s, is checked once they all do, with the handler's others).
    for (uri, names) in [
        (
            "/api/v1/articles?published_after=garbage&published_before=nope&sort=x",
            &["published_after", "published_before", "sort"][..],
        ),
        ("/api/v1/ranking?window=2h&metric=x", &["window", "metric"]),
        (
            "/api/v1/recommendations?reader=bad!&limit=0",
            &["limit", "reader"],
        ),
        (
            "/api/v1/articles?limit=0&cursor=garbage",
            &["limit", "cursor"],
        ),
        (
            "/api/v1/articles/1?include=nope&reader=bad!",
            &["include", "reader"],
        ),
    ] {
        let reply = send(&app, get(uri)).await;
        reply.assert_problem(400, names);
        assert_eq!(
            reply.body["errors"].as_array().unwrap().len(),
            names.len(),
            "{}",
            reply.body
        );
    }
    // Said in the API's words, not the parser's.
    for (uri, detail) in [
        ("/api/v1/articles?limit=-1", "must be between 1 and 100"),
        (
            "/api/v1/articles?limit=99999999999",
            "must be between 1 and 100",
        ),
        (
            "/api/v1/articles/1/related?limit=ten",
            "must be between 1 and 50",
        ),
    ] {
        let reply = send(&app, get(uri)).await;
        assert_eq!(reply.body["errors"][0]["detail"], detail, "{uri}");
    }
}

fn raw_post(uri: &str, content_type: &str, body: impl Into<String>) -> actix_http::Request {
    TestRequest::post()
        .uri(uri)
        .insert_header(("authorization", format!("Bearer {ADMIN}")))
        .insert_header(("content-type", content_type))
        .set_payload(body.into())
        .to_request()
}

#[actix_web::test]
async fn malformed_json_is_400_and_wrong_fields_are_422_naming_the_field() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let uri = "/api/v1/articles";
    send(&app, raw_post(uri, "application/json", "{\"title\": "))
        .await
        .assert_problem(400, &[]);
    send(&app, raw_post(uri, "application/json", "{} trailing"))
        .await
        .assert_problem(400, &[]);
    send(&app, raw_post(uri, "application/json", ""))
        .await
        .assert_problem(400, &[]);

    let mut wrong_type = article("Title", "news");
    wrong_type["tags"] = json!("not-a-list");
    send(&app, admin("POST", uri, wrong_type))
        .await
        .assert_problem(422, &["tags"]);
    let mut unknown = article("Title", "news");
    unknown["colour"] = json!("red");
    send(&app, admin("POST", uri, unknown))
        .await
        .assert_problem(422, &["colour"]);
    // Values of the wrong type and unknown fields are named together.
    let mut wrong_types = article("Title", "news");
    wrong_types["title"] = json!(7);
    wrong_types["tags"] = json!("not-a-list");
    wrong_types["colour"] = json!("red");
    wrong_types["dateline"] = json!(["LONDON"]);
    send(&app, admin("POST", uri, wrong_types))
        .await
        .assert_problem(422, &["title", "tags", "colour", "dateline"]);
    // With the checks of the fields that did read: one answer for all.
    let mixed = json!({"title": "", "body_html": "<p>x</p>", "category": "news",
        "status": 5, "author": 7, "published_at": 12});
    send(&app, admin("POST", uri, mixed))
        .await
        .assert_problem(422, &["title", "status", "author", "published_at"]);
    send(
        &app,
        admin(
            "POST",
            uri,
            json!({"category": "news", "body_html": "<p>x</p>"}),
        ),
    )
    .await
    .assert_problem(422, &["title"]);
    // Missing fields are named with the others, not alone.
    let reply = send(
        &app,
        admin("POST", uri, json!({"title": "", "body_markdown": "x"})),
    )
    .await;
    reply.assert_problem(422, &["title", "category"]);
    // A body of dashes or a stray number is what an importer leaves when
    // it found no text.
    for empty in [
        "<p>- -</p>",
        "<p>-1</p>",
        "<p><img src=\"https://img.example.com/a.jpg\"></p>",
    ] {
        let mut input = article("Title", "news");
        input["body_html"] = json!(empty);
        let reply = send(&app, admin("POST", uri, input)).await;
        reply.assert_problem(422, &["body_html"]);
        assert!(
            reply.body.to_string().contains("has no words"),
            "{}",
            reply.body
        );
    }
    let mut bad_status = article("Title", "news");
    bad_status["status"] = json!("live");
    send(&app, admin("POST", uri, bad_status))
        .await
        .assert_problem(422, &["status"]);

    let mut many = article("", "Not A Slug");
    many["image_url"] = json!("javascript:alert(1)");
    many["body_markdown"] = json!("also markdown");
    many["tags"] = json!((0..21).map(|i| format!("tag {i}")).collect::<Vec<_>>());
    many["author"] = json!("Bad Author");
    let reply = send(&app, admin("POST", uri, many)).await;
    reply.assert_problem(
        422,
        &[
            "title",
            "category",
            "image_url",
            "body_markdown",
            "tags",
            "author",
        ],
    );
    // A category and an author that do not exist are named with the
    // other problems, not after they are fixed.
    let mut unknown_too = article("", "nowhere");
    unknown_too["author"] = json!("nobody");
    unknown_too["status"] = json!("bogus");
    unknown_too["published_at"] = json!("yesterday");
    let reply = send(&app, admin("POST", uri, unknown_too)).await;
    reply.assert_problem(
        422,
        &["title", "category", "author", "status", "published_at"],
    );
    let id = create(&app, article("Patched badly", "news")).await["id"].clone();
    let reply = send(
        &app,
        admin(
            "PATCH",
            &format!("{uri}/{id}"),
            json!({"title": "", "category": "nowhere"}),
        ),
    )
    .await;
    reply.assert_problem(422, &["title", "category"]);
    let reply = send(
        &app,
        admin(
            "PATCH",
            &format!("{uri}/{id}"),
            json!({"dateline": 5, "status": "live", "published_at": "soon"}),
        ),
    )
    .await;
    reply.assert_problem(422, &["dateline", "status", "published_at"]);
    let reply = send(&app, get("/api/v1/articles")).await;
    assert_eq!(
        reply.body["data"].as_array().unwrap().len(),
        1,
        "{}",
        reply.body
    );
    assert_eq!(reply.body["data"][0]["title"], "Patched badly");
    // The same tag given again and again is one tag, within the limit.
    let mut repeated = article("Repeated tags", "news");
    repeated["tags"] = json!(vec!["x"; 22]);
    let created = create(&app, repeated).await;
    assert_eq!(
        created["tags"].as_array().map(Vec::len),
        Some(1),
        "{created}"
    );
}

/// An image URL is kept in a form a page and a feed can use as it is:
/// characters a URL may not hold are percent-encoded, not given back raw
/// (a quote would end an attribute); one that is no http(s) address is
/// refused.
#[actix_web::test]
async fn an_image_url_is_kept_in_its_standard_form() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    for bad in [
        "ftp://img.example.com/a.jpg",
        "/relative/a.jpg",
        "https://",
        "javascript:alert(1)",
    ] {
        let mut input = article("Pictured", "news");
        input["image_url"] = json!(bad);
        let reply = send(&app, admin("POST", "/api/v1/articles", input)).await;
        reply.assert_problem(422, &["image_url"]);
    }
    for (given, kept) in [
        (
            "https://img.example.com/café.jpg",
            "https://img.example.com/caf%C3%A9.jpg",
        ),
        (
            "https://img.example.com/a b.jpg",
            "https://img.example.com/a%20b.jpg",
        ),
        (
            "https://img.example.com/a.jpg?x=\"onerror=alert(1)",
            "https://img.example.com/a.jpg?x=%22onerror=alert(1)",
        ),
        (
            "https://img.example.com/<b>.jpg",
            "https://img.example.com/%3Cb%3E.jpg",
        ),
    ] {
        let mut input = article("Pictured", "news");
        input["image_url"] = json!(given);
        assert_eq!(create(&app, input).await["image_url"], kept, "{given}");
    }
    // Percent-encoding may take a URL past the limit: that is refused.
    let mut long = article("Pictured", "news");
    long["image_url"] = json!(format!("https://img.example.com/{}", "é".repeat(700)));
    let reply = send(&app, admin("POST", "/api/v1/articles", long)).await;
    reply.assert_problem(422, &["image_url"]);
}

#[actix_web::test]
async fn oversized_bodies_are_413_and_other_media_types_415() {
    let (app, _dir) = test_app(false).await;
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(1024 * 1024 + 1));
    send(&app, raw_post("/api/v1/tags", "application/json", huge))
        .await
        .assert_problem(413, &[]);
    send(
        &app,
        raw_post("/api/v1/tags", "text/plain", "{\"name\": \"x\"}"),
    )
    .await
    .assert_problem(415, &[]);
    let merge_patch = raw_post(
        "/api/v1/tags",
        "application/merge-patch+json",
        "{\"name\": \"Accepted\"}",
    );
    assert_eq!(send(&app, merge_patch).await.status, 201);
}

/// `body` compressed as `Content-Encoding: encoding` says.
fn compressed(encoding: &str, body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let level = flate2::Compression::default();
    match encoding {
        "gzip" => {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), level);
            encoder.write_all(body).unwrap();
            encoder.finish().unwrap()
        }
        "deflate" => {
            let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), level);
            encoder.write_all(body).unwrap();
            encoder.finish().unwrap()
        }
        _ => unreachable!("{encoding}"),
    }
}

fn encoded_post(uri: &str, encoding: &str, body: Vec<u8>) -> actix_http::Request {
    TestRequest::post()
        .uri(uri)
        .insert_header(("authorization", format!("Bearer {ADMIN}")))
        .insert_header(("content-type", "application/json"))
        .insert_header(("content-encoding", encoding))
        .set_payload(body)
        .to_request()
}

#[actix_web::test]
async fn compressed_bodies_are_read_within_the_limit_after_decoding() {
    let (app, _dir) = test_app(false).await;
    for encoding in ["gzip", "deflate"] {
        let body = format!(r#"{{"name": "Sent {encoding}"}}"#);
        let reply = send(
            &app,
            encoded_post(
                "/api/v1/tags",
                encoding,
                compressed(encoding, body.as_bytes()),
            ),
        )
        .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        assert_eq!(reply.body["data"]["slug"], format!("sent-{encoding}"));
        // A few kilobytes that decode past the 1 MiB limit.
        let bomb = format!("{{\"name\": \"{}\"}}", "x".repeat(8 * 1024 * 1024));
        let bomb = compressed(encoding, bomb.as_bytes());
        assert!(bomb.len() < 16 * 1024, "{}", bomb.len());
        send(&app, encoded_post("/api/v1/tags", encoding, bomb))
            .await
            .assert_problem(413, &[]);
        send(
            &app,
            encoded_post("/api/v1/tags", encoding, b"not compressed".to_vec()),
        )
        .await
        .assert_problem(400, &[]);
    }
    // Brotli and zstd unfold far more per byte: not taken.
    for encoding in ["br", "zstd", "compress"] {
        let reply = send(&app, encoded_post("/api/v1/tags", encoding, b"{}".to_vec())).await;
        reply.assert_problem(415, &[]);
        assert_eq!(reply.header("accept-encoding"), Some("gzip, deflate"));
    }
}

#[actix_web::test]
async fn request_targets_over_8_kib_are_414_problems() {
    let (app, _dir) = test_app(false).await;
    let long = format!("/api/v1/articles?q={}", "a".repeat(8 * 1024));
    send(&app, get(&long)).await.assert_problem(414, &[]);
    // Just under the limit, the route answers for itself.
    let fits = format!("/api/v1/articles/{}", "a".repeat(8 * 1024 - 20));
    send(&app, get(&fits)).await.assert_problem(404, &[]);
}

#[actix_web::test]
async fn over_16_kib_or_64_headers_are_431_problems() {
    // Responses kept (the tests' default keeps none).
    let (app, _dir) =
        common::test_app_with(false, &[("FRONTPAGE_RESPONSE_CACHE_SECS", "60")]).await;
    // Kept as a response (asked for twice): a request over the limits is
    // refused all the same, not answered from memory.
    for _ in 0..2 {
        assert_eq!(send(&app, get("/api/v1/articles")).await.status, 200);
    }
    let big = TestRequest::get()
        .uri("/api/v1/articles")
        .insert_header(("x-big", "a".repeat(16 * 1024)))
        .to_request();
    send(&app, big).await.assert_problem(431, &[]);
    let mut many = TestRequest::get().uri("/api/v1/articles");
    for i in 0..65 {
        many = many.insert_header((format!("x-header-{i}"), "v"));
    }
    send(&app, many.to_request()).await.assert_problem(431, &[]);
    let mut fine = TestRequest::get().uri("/api/v1/articles");
    for i in 0..60 {
        fine = fine.insert_header((format!("x-header-{i}"), "v".repeat(200)));
    }
    assert_eq!(send(&app, fine.to_request()).await.status, 200);
}

#[actix_web::test]
async fn taken_slugs_are_409_problems_naming_the_slug() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    send(
        &app,
        admin(
            "POST",
            "/api/v1/categories",
            json!({"slug": "news", "name": "News again"}),
        ),
    )
    .await
    .assert_problem(409, &["slug"]);
    send(&app, admin("POST", "/api/v1/tags", json!({"name": "Same"}))).await;
    send(&app, admin("POST", "/api/v1/tags", json!({"name": "same"})))
        .await
        .assert_problem(409, &["slug"]);
    send(
        &app,
        admin("POST", "/api/v1/authors", json!({"name": "A B"})),
    )
    .await;
    let reply = send(
        &app,
        admin(
            "POST",
            "/api/v1/authors",
            json!({"slug": "a-b", "name": "Other"}),
        ),
    )
    .await;
    reply.assert_problem(409, &["slug"]);
    assert_eq!(
        reply.body["detail"],
        "An author with the slug `a-b` exists already."
    );
    send(
        &app,
        admin(
            "PATCH",
            "/api/v1/categories/world",
            json!({"slug": "sport"}),
        ),
    )
    .await
    .assert_problem(409, &["slug"]);
}

#[actix_web::test]
async fn head_works_wherever_get_does() {
    let (app, _dir) = test_app(false).await;
    let req = TestRequest::default()
        .method("HEAD".parse().unwrap())
        .uri("/api/v1/categories")
        .to_request();
    assert_eq!(send(&app, req).await.status, 200);
}

#[actix_web::test]
async fn timestamps_outside_years_1_to_9999_are_refused() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    for at in [
        "9999-12-31T23:59:59-05:00",
        "+10000-01-01T00:00:00Z",
        "0000-01-01T00:00:00+01:00",
        "2026-11-20",
    ] {
        let mut input = article("Far future", "news");
        input["published_at"] = json!(at);
        send(&app, admin("POST", "/api/v1/articles", input))
            .await
            .assert_problem(422, &["published_at"]);
    }
    for query in [
        "published_after=%2B10000-01-01T00:00:00Z",
        "published_before=2026-11-20",
    ] {
        let reply = send(&app, get(&format!("/api/v1/articles?{query}"))).await;
        reply.assert_problem(400, &[query.split('=').next().unwrap()]);
        assert!(
            reply.body["errors"][0]["detail"]
                .as_str()
                .unwrap()
                .contains("RFC 3339")
        );
    }
}

#[actix_web::test]
async fn a_cursor_is_only_good_for_the_list_that_made_it() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    for i in 0..3 {
        let mut input = article(&format!("Story {i}"), "news");
        input["tags"] = json!([format!("tag {i}")]);
        create(&app, input).await;
        send(
            &app,
            admin(
                "POST",
                "/api/v1/authors",
                json!({"name": format!("Author {i}")}),
            ),
        )
        .await;
    }
    let next = |uri: &'static str| {
        let app = &app;
        async move {
            send(app, get(uri)).await.body["meta"]["next_cursor"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let from_articles = next("/api/v1/articles?limit=1").await;
    let from_tags = next("/api/v1/tags?limit=1").await;
    let from_authors = next("/api/v1/authors?limit=1").await;
    for (list, cursor) in [
        ("tags", &from_articles),
        ("authors", &from_tags),
        ("tags", &from_authors),
        ("articles", &from_tags),
    ] {
        send(&app, get(&format!("/api/v1/{list}?cursor={cursor}")))
            .await
            .assert_problem(400, &["cursor"]);
    }
}

#[actix_web::test]
async fn a_json_body_must_be_an_object() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let array = json!([
        null,
        "Array title",
        null,
        "<p>x</p>",
        null,
        null,
        null,
        null,
        "news",
        [],
        null,
        "published",
        null
    ]);
    send(&app, admin("POST", "/api/v1/articles", array))
        .await
        .assert_problem(400, &[]);
    let with_bom = raw_post(
        "/api/v1/tags",
        "application/json",
        "\u{feff}{\"name\": \"Byte order\"}",
    );
    assert_eq!(send(&app, with_bom).await.status, 201);
}

/// A problem's `type` leads to a page that says what the problem means,
/// and `/problems` lists every kind.
#[actix_web::test]
async fn a_problems_type_leads_to_a_page_about_it() {
    let (app, _dir) = test_app(false).await;
    let missing = send(&app, get("/api/v1/articles/no-such-story")).await;
    assert_eq!(missing.status, 404);
    let kind = missing.body["type"].as_str().expect("a type").to_string();
    assert_eq!(kind, "/problems/not-found");

    let page = send(&app, get(&kind)).await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let text = page.body.as_str().expect("a page");
    assert!(text.contains("<h1>Not found</h1>"), "{text}");
    assert!(text.contains("status 404"), "{text}");

    let all = send(&app, get("/problems")).await;
    assert_eq!(all.status, 200);
    let all = all.body.as_str().expect("a page").to_string();
    for code in [
        "not-found",
        "validation-failed",
        "storage-full",
        "rate-limited",
    ] {
        assert!(
            all.contains(&format!("href=\"problems/{code}\"")),
            "{code}: {all}"
        );
    }

    let unknown = send(&app, get("/problems/no-such-kind")).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(
        unknown.header("content-type"),
        Some("application/problem+json")
    );
    assert!(
        unknown.body["detail"]
            .as_str()
            .unwrap()
            .contains("no-such-kind")
    );
}

/// Every refusal reaches a browser's page as any answer does (with CORS,
/// so that `fetch` sees the problem, not an opaque failure) and is never
/// stored, whichever layer made it: the request limits, the router, the
/// encoder, a handler.
#[actix_web::test]
async fn every_error_can_be_read_by_a_page_and_is_not_stored() {
    let (app, _dir) = test_app(false).await;
    let from_page = |req: TestRequest| req.insert_header(("origin", "https://news.example.com"));
    let long = format!("/api/v1/articles?q={}", "a".repeat(8 * 1024));
    let cases = [
        (414, from_page(TestRequest::get().uri(&long))),
        (
            431,
            from_page(TestRequest::get().uri("/api/v1/articles"))
                .insert_header(("x-big", "a".repeat(16 * 1024))),
        ),
        (405, from_page(TestRequest::delete().uri("/healthz"))),
        (
            406,
            from_page(TestRequest::get().uri("/api/v1/articles"))
                .insert_header(("accept-encoding", "identity;q=0")),
        ),
        (
            400,
            from_page(TestRequest::get().uri("/api/v1/articles?limit=0")),
        ),
        (
            422,
            from_page(TestRequest::post().uri("/api/v1/articles"))
                .insert_header(("authorization", format!("Bearer {ADMIN}")))
                .set_json(json!({"title": ""})),
        ),
    ];
    for (status, req) in cases {
        let reply = send(&app, req.to_request()).await;
        reply.assert_problem(status, &[]);
        assert_eq!(
            reply.header("access-control-allow-origin"),
            Some("*"),
            "{status}"
        );
        assert_eq!(
            reply.header("x-content-type-options"),
            Some("nosniff"),
            "{status}"
        );
        assert_eq!(reply.header("cache-control"), Some("no-store"), "{status}");
    }
}

/// A path with a trailing slash (a frontend router's habit) is sent on to
/// the one without, query kept, when that one answers the method; a path
/// that is nothing either way stays a 404.
#[actix_web::test]
async fn a_trailing_slash_is_sent_on_to_the_path_without() {
    let (app, _dir) = test_app(true).await;
    let reply = send(&app, get("/api/v1/articles/1/?include=related")).await;
    assert_eq!(reply.status, 308, "{}", reply.body);
    assert_eq!(
        reply.header("location"),
        Some("/api/v1/articles/1?include=related")
    );
    let reply = send(&app, get("/api/v1/ranking/")).await;
    assert_eq!(reply.header("location"), Some("/api/v1/ranking"));
    // Looked up as the router reads the path, sent on as it was spelt.
    let reply = send(&app, get("/api/v1/%72anking/")).await;
    assert_eq!(reply.header("location"), Some("/api/v1/%72anking"));
    send(&app, get("/api/v1/nothing/"))
        .await
        .assert_problem(404, &[]);
    let wrong_method = TestRequest::delete().uri("/api/v1/ranking/").to_request();
    send(&app, wrong_method).await.assert_problem(404, &[]);
}

/// Behind a proxy that serves the API under a path, a problem's `type` is
/// under that path too, whichever layer made the problem, and the problem
/// pages link to each other there: resolved against the address a client
/// used, `/problems/not-found` would name the proxy's root.
#[actix_web::test]
async fn behind_a_proxy_path_a_problem_type_leads_under_it() {
    let (app, _dir) = common::test_app_with(
        false,
        &[("FRONTPAGE_PUBLIC_BASE_URL", "https://example.com/news-api")],
    )
    .await;
    let long = format!("/api/v1/articles?q={}", "a".repeat(8 * 1024));
    let cases = [
        (get("/api/v1/articles/nope"), "/news-api/problems/not-found"),
        (
            get("/api/v1/articles?limit=0"),
            "/news-api/problems/invalid-parameters",
        ),
        (get(&long), "/news-api/problems/uri-too-long"),
        (
            TestRequest::get()
                .uri("/api/v1/articles")
                .insert_header(("accept-encoding", "identity;q=0"))
                .to_request(),
            "/news-api/problems/not-acceptable",
        ),
    ];
    for (req, kind) in cases {
        let reply = send(&app, req).await;
        assert_eq!(reply.body["type"], kind, "{}", reply.body);
    }
    let list = send(&app, get("/problems")).await.body;
    let list = list.as_str().expect("a page");
    assert!(list.contains(r#"<a href="problems/not-found">"#), "{list}");
    let page = send(&app, get("/problems/not-found")).await.body;
    let page = page.as_str().expect("a page");
    assert!(page.contains(r#"<a href="../problems">"#), "{page}");
}
