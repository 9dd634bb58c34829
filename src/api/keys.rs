//! Admin keys on requests: the Bearer token, checked once per request by
//! the [`authenticate`] middleware, the scopes it grants ([`key_scopes`]),
//! and the [`Admin`] extractor of routes that write.

use std::pin::Pin;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::{FromRequest, HttpMessage, HttpRequest, ResponseError};

use crate::auth::{self, Scope};
use crate::db::keys;
use crate::db::taxonomy::TagsShown;
use crate::error::ApiError;
use crate::state::AppState;

/// The token of an `Authorization: Bearer <token>` value; the scheme is
/// case-insensitive (RFC 9110) and any whitespace may separate the two.
fn bearer_token(value: &str) -> Option<&str> {
    let value = value.trim();
    let split = value.find(char::is_whitespace)?;
    let (scheme, token) = value.split_at(split);
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Proof that the request carries a live admin key with the `write` scope.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let key = key_scopes(req);
        Box::pin(async move {
            let scopes = key.await?.ok_or(ApiError::Unauthorized(
                "Send an admin key as `Authorization: Bearer <key>`.",
            ))?;
            if scopes.contains(&Scope::Write) {
                Ok(Admin)
            } else {
                Err(ApiError::Forbidden(
                    "This key may not write: it lacks the `write` scope.".into(),
                ))
            }
        })
    }
}

/// The scopes of a request's key, once looked up.
pub type KeyScopes = Pin<Box<dyn Future<Output = Result<Option<Vec<Scope>>, ApiError>>>>;

/// The scopes of a key checked by [`authenticate`].
#[derive(Debug, Clone)]
struct Authenticated(Vec<Scope>);

/// Checks the key of every API request that sends one as a Bearer token,
/// whatever the route: a key that is not valid, or has been revoked, is a
/// 401 before anything is looked up. Were it checked only where a key
/// changes the answer (a draft's page), a made-up key would tell anyone
/// which ids and slugs are drafts or embargoed stories (401) and which
/// are nothing (404). Other schemes (`Basic`, from a proxy in front) are
/// no key.
pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let token = crate::route_table::routed_path(req.request())
        .starts_with("/api/")
        .then(|| bearer(req.request()))
        .flatten();
    if let Some(token) = token {
        let state = req.app_data::<Data<AppState>>().cloned();
        match scopes_of(state, token).await {
            Ok(scopes) => {
                req.extensions_mut().insert(Authenticated(scopes));
            }
            Err(error) => {
                let res = error.error_response();
                return Ok(req.into_response(res).map_into_right_body());
            }
        }
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// The token of the request's `Authorization: Bearer` header, if it has one.
pub fn bearer(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_token)
        .map(str::to_string)
}

/// The scopes of the request's key: `None` without an `Authorization:
/// Bearer` header; an error for a key that is not valid or has been
/// revoked. Looked up once per request (see [`authenticate`]).
pub fn key_scopes(req: &HttpRequest) -> KeyScopes {
    if let Some(Authenticated(scopes)) = req.extensions().get::<Authenticated>() {
        let scopes = scopes.clone();
        return Box::pin(async move { Ok(Some(scopes)) });
    }
    let state = req.app_data::<Data<AppState>>().cloned();
    let token = bearer(req);
    Box::pin(async move {
        match token {
            Some(token) => scopes_of(state, token).await.map(Some),
            None => Ok(None),
        }
    })
}

/// The scopes a Bearer `token` grants; an error for a key that is not
/// valid or has been revoked.
async fn scopes_of(state: Option<Data<AppState>>, token: String) -> Result<Vec<Scope>, ApiError> {
    let state = state.ok_or_else(|| ApiError::Internal("app state missing".into()))?;
    let hash = auth::hash_key(&token);
    if state.is_admin_token(&hash) {
        return Ok(Scope::ALL.to_vec());
    }
    let stored = state
        .db
        .read(move |conn| keys::find_live(conn, &hash))
        .await?;
    match stored {
        Some((stored_hash, scopes)) if auth::same_hash(&hash, &stored_hash) => {
            Ok(Scope::parse_list(&scopes))
        }
        _ => Err(ApiError::Unauthorized(
            "The key is not valid, or has been revoked.",
        )),
    }
}

/// The tags `req` is shown: those public now, or every tag for a key that
/// may read drafts (an editor's). The tag of an embargoed story stays as
/// hidden as the story, in the tag list and as a list's filter alike.
pub async fn tags_shown(req: &HttpRequest) -> Result<TagsShown, ApiError> {
    let scopes = key_scopes(req).await?;
    if scopes.is_some_and(|scopes| scopes.contains(&Scope::ReadDrafts)) {
        Ok(TagsShown::All)
    } else {
        Ok(TagsShown::Public(crate::db::now()))
    }
}
