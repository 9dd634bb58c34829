//! The OpenAPI document: committed, served, and complete.

mod common;

use common::{get, send, test_app};
use serde_json::Value;

const REGENERATE: &str = "cargo run -- openapi > openapi/openapi.json";

#[test]
fn the_committed_spec_is_the_generated_spec() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .unwrap_or_else(|_| panic!("openapi/openapi.json is missing; run `{REGENERATE}`"));
    let generated = frontpage::openapi::spec_json();
    assert!(
        committed == generated,
        "openapi/openapi.json differs from the generated spec; run `{REGENERATE}` and commit it"
    );
}

#[actix_web::test]
async fn the_server_serves_the_same_spec() {
    let (app, _dir) = test_app(false).await;
    let reply = send(&app, get("/openapi.json")).await;
    assert_eq!(reply.status, 200);
    let generated: Value = serde_json::from_str(&frontpage::openapi::spec_json()).unwrap();
    assert_eq!(reply.body, generated);
    assert_eq!(reply.body["openapi"], "3.1.0");
}

#[actix_web::test]
async fn swagger_ui_is_served_from_the_binary() {
    let (app, _dir) = test_app(false).await;
    let reply = send(&app, get("/docs")).await;
    assert_eq!(reply.status, 308);
    assert_eq!(reply.header("location"), Some("docs/"));
    let reply = send(&app, get("/docs/")).await;
    assert_eq!(reply.status, 200);
    assert!(
        reply.body.as_str().unwrap_or_default().contains("swagger"),
        "{}",
        reply.body
    );
    // It fetches the document relative to itself, so that it finds it
    // behind a proxy that serves everything under a path.
    let reply = send(&app, get("/docs/swagger-initializer.js")).await;
    assert_eq!(reply.status, 200);
    let script = reply.body.as_str().unwrap_or_default();
    assert!(script.contains(r#""url": "../openapi.json""#), "{script}");
    // And asks no third party (validator.swagger.io) to check it.
    assert!(script.contains(r#""validatorUrl": "none""#), "{script}");
}

#[test]
fn every_operation_is_named_tagged_summarised_and_documents_its_errors() {
    let spec: Value = serde_json::from_str(&frontpage::openapi::spec_json()).unwrap();
    let problem_ref = "#/components/schemas/Problem";
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let at = format!("{method} {path}");
            assert!(op["operationId"].is_string(), "{at}: no operationId");
            assert!(
                op["tags"].as_array().is_some_and(|t| !t.is_empty()),
                "{at}: no tag"
            );
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{at}: no summary"
            );
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.contains_key("500"), "{at}: 500 undocumented");
            if op.get("requestBody").is_some() {
                for status in ["400", "408", "413", "415"] {
                    assert!(
                        responses.contains_key(status),
                        "{at}: {status} undocumented"
                    );
                }
            }
            if op.get("security").is_some() {
                assert!(responses.contains_key("401"), "{at}: 401 undocumented");
            }
            for param in op["parameters"].as_array().into_iter().flatten() {
                assert!(
                    param["schema"].is_object(),
                    "{at}: parameter {} untyped",
                    param["name"]
                );
                // A default given beside an inline enum comes out as an
                // `allOf` with an empty object, which no value satisfies.
                for part in param["schema"]["allOf"].as_array().into_iter().flatten() {
                    assert!(
                        part["type"] != "object" || part.get("properties").is_some(),
                        "{at}: parameter {} can never be valid: {}",
                        param["name"],
                        param["schema"]
                    );
                }
                // A header is absent or a string, never null (client
                // generators would type it `string | null`).
                if param["in"] == "header" {
                    assert_eq!(param["schema"]["type"], "string", "{at}: {}", param["name"]);
                }
                assert!(
                    param["description"].is_string(),
                    "{at}: parameter {} undescribed",
                    param["name"]
                );
            }
            for (status, response) in responses.iter().filter(|(s, _)| s.as_str() >= "400") {
                let direct = &response["content"]["application/problem+json"]["schema"]["$ref"];
                let shared = response["$ref"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("#/components/responses/"));
                assert!(
                    direct == problem_ref || shared,
                    "{at}: {status} is not a problem"
                );
            }
        }
    }
}

#[test]
fn only_writes_that_carry_a_slug_document_a_conflict() {
    let spec: Value = serde_json::from_str(&frontpage::openapi::spec_json()).unwrap();
    let conflict = |method: &str, path: &str| {
        spec["paths"][path][method]["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} {path} is not in the spec"))
            .contains_key("409")
    };
    assert!(conflict("post", "/api/v1/articles"));
    assert!(conflict("patch", "/api/v1/tags/{slug}"));
    for (method, path) in [
        ("post", "/api/v1/articles/{id_or_slug}/views"),
        ("put", "/api/v1/articles/{id_or_slug}/reactions/{kind}"),
        ("delete", "/api/v1/articles/{id_or_slug}/reactions/{kind}"),
    ] {
        assert!(!conflict(method, path), "{method} {path}: no slug, no 409");
    }
}

/// The spec's slug patterns take what the server takes: a client that
/// checks a slug against them is not refused for it afterwards. An
/// article's slug needs a letter (a number is an id); a tag's does not.
#[test]
fn the_slug_patterns_agree_with_the_server() {
    let spec: Value = serde_json::from_str(&frontpage::openapi::spec_json()).unwrap();
    let pattern = |schema: &str| {
        let pattern = spec["components"]["schemas"][schema]["properties"]["slug"]["pattern"]
            .as_str()
            .unwrap_or_else(|| panic!("a slug pattern in {schema}"));
        regex::Regex::new(pattern).unwrap()
    };
    let (article, tag) = (pattern("ArticleInput"), pattern("TagInput"));
    for slug in [
        "news",
        "0",
        "2026",
        "2026-05",
        "7x",
        "2026-budget",
        "budget-2026",
        "1-2-a3-4",
        "a-",
        "-a",
        "a--b",
        "Ab",
        "a_b",
        "x",
    ] {
        assert_eq!(
            article.is_match(slug),
            frontpage::content::article_slug_problem(slug).is_none(),
            "article slug {slug:?} against {article}"
        );
        assert_eq!(
            tag.is_match(slug),
            frontpage::content::slug_problem(slug, 100).is_none(),
            "tag slug {slug:?} against {tag}"
        );
    }
}

/// Behind a proxy's path, the served document names it as the server, so
/// that "Try it out" and generated clients call the API there.
#[actix_web::test]
async fn the_served_document_names_the_public_path_as_its_server() {
    let (app, _dir) = common::test_app_with(
        false,
        &[("FRONTPAGE_PUBLIC_BASE_URL", "https://example.com/news-api")],
    )
    .await;
    let reply = send(&app, get("/openapi.json")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body["servers"][0]["url"], "/news-api",
        "{}",
        reply.body["servers"]
    );
    // The rest is the committed document.
    let mut served = reply.body.clone();
    served["servers"] = Value::Null;
    let mut committed: Value = serde_json::from_str(&frontpage::openapi::spec_json()).unwrap();
    assert_eq!(committed["servers"][0]["url"], "/");
    committed["servers"] = Value::Null;
    assert_eq!(served, committed);
}
