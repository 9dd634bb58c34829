//! Health and readiness.

mod common;

use common::{get, send, test_app};
use serde_json::json;

#[actix_web::test]
async fn a_migrated_store_is_alive_and_ready() {
    let (app, _dir) = test_app(false).await;
    let reply = send(&app, get("/healthz")).await;
    assert_eq!(
        (reply.status.as_u16(), reply.body.clone()),
        (200, json!({"status": "ok"}))
    );
    let reply = send(&app, get("/readyz")).await;
    assert_eq!(
        (reply.status.as_u16(), reply.body.clone()),
        (200, json!({"status": "ready"}))
    );
}
