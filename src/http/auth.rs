//! Who may use the admin API: the guard every admin route sits behind, and the login,
//! logout and first-admin setup endpoints.
//!
//! An admin is either a browser with a valid session cookie ([`ADMIN_COOKIE`]) or a command on
//! this machine with the control token (`Authorization: Bearer`, see [`crate::control`]).
//! Anyone else gets `401` (no credentials, or credentials that are wrong or expired) or `403`
//! (a player session or an implementor's API key: known, but not an admin). Cookie-borne
//! requests that change state must come from our own origin (`Origin` or `Referer` naming this
//! host), which with `SameSite=Strict` shuts out cross-site request forgery.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::caller::{is_control_token, ClientAddress};
use super::error::{AccessError, ApiError, RequestError};
use super::extract::{JsonBody, PLAYER_COOKIE};
use super::{run_blocking, AppState};
use crate::domain::admin::{Password, Username};
use crate::service::accounts::{AccountError, AdminIdentity, NewSession};

/// Name of the admin session cookie.
pub const ADMIN_COOKIE: &str = "doodlebox_admin";

/// Who may call an admin route. Every admin route names one in [`super::admin_routes`], so a
/// route cannot exist without a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Anyone: signing in, signing out and the first-admin setup.
    Public,
    /// A signed-in admin or a local command with the control token.
    Admin,
}

/// How the admin making a request proved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminCaller {
    /// A browser session of this account.
    Session(AdminIdentity),
    /// A command on this machine (the control token).
    Local,
}

/// Middleware for [`Policy::Admin`] routes.
pub async fn require_admin(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    match admin_caller(&state, req.method(), req.headers()).await {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

/// The fallback of the admin API: unknown paths are not found, but only admins learn that.
pub async fn admin_fallback(State(state): State<AppState>, req: Request) -> Response {
    match admin_caller(&state, req.method(), req.headers()).await {
        Ok(_) => ApiError::from(RequestError::NoSuchEndpoint).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn admin_caller(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
) -> Result<AdminCaller, ApiError> {
    if let Some(authorization) = headers.get(header::AUTHORIZATION) {
        let token = authorization
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .unwrap_or_default();
        if is_control_token(token, &state.control.token) {
            return Ok(AdminCaller::Local);
        }
        let (auth, secret) = (state.key_auth.clone(), token.to_owned());
        let is_api_key = run_blocking(move || Ok(auth.lookup(&secret)?))
            .await?
            .is_some();
        return Err(if is_api_key {
            forbidden("an API key can classify drawings but not use admin routes")
        } else {
            unauthenticated("this bearer token is not valid for admin routes")
        });
    }
    if let Some(token) = cookie(headers, ADMIN_COOKIE) {
        let (accounts, token) = (state.accounts.clone(), token.to_owned());
        let identity = run_blocking(move || Ok(accounts.authenticate(&token)?)).await?;
        let Some(identity) = identity else {
            return Err(unauthenticated(
                "your admin session has expired; please sign in again",
            ));
        };
        if !is_safe(method) {
            check_same_origin(headers, true)?;
        }
        return Ok(AdminCaller::Session(identity));
    }
    if cookie(headers, PLAYER_COOKIE).is_some() {
        return Err(forbidden(
            "this is a player session; admin routes need an admin to sign in",
        ));
    }
    Err(unauthenticated("sign in as an admin to use this route"))
}

fn unauthenticated(message: &'static str) -> ApiError {
    AccessError::Unauthenticated(message).into()
}

fn forbidden(message: &'static str) -> ApiError {
    AccessError::Forbidden(message).into()
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A value of the named cookie.
pub(super) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
        .find(|value| !value.is_empty())
}

/// Refuses a request whose `Origin` (or, without one, `Referer`) names another site. With
/// `required`, a request naming neither is refused too (browsers always send `Origin` on a
/// cross-site or state-changing `fetch`; only non-browser clients leave both out).
fn check_same_origin(headers: &HeaderMap, required: bool) -> Result<(), ApiError> {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let claimed = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok());
    let Some(claimed) = claimed else {
        return if required {
            Err(cross_origin())
        } else {
            Ok(())
        };
    };
    let authority = claimed
        .strip_prefix("http://")
        .or_else(|| claimed.strip_prefix("https://"))
        .map(|rest| rest.split('/').next().unwrap_or(rest));
    match (authority, host) {
        (Some(authority), Some(host)) if authority.eq_ignore_ascii_case(host) => Ok(()),
        _ => Err(cross_origin()),
    }
}

fn cross_origin() -> ApiError {
    forbidden("this request must come from a page of this Doodlebox (Origin check)")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    username: String,
    password: String,
}

/// `POST /api/v1/admin/login`: `{"username","password"}` → the session cookie.
pub async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: JsonBody<LoginBody>,
) -> Result<Response, ApiError> {
    check_same_origin(&headers, false)?;
    let LoginBody { username, password } = body.value;
    // A name no account can have is refused before any limiter keeps it.
    let username = Username::parse(&username)?;
    let wait = state
        .limits
        .login(address, username.as_str())
        .map_err(|l| state.too_many(l))?;
    tokio::time::sleep(wait).await;
    let accounts = state.accounts.clone();
    let name = username.clone();
    let outcome = run_blocking(move || Ok(accounts.log_in(name.as_str(), &password))).await?;
    let session = outcome.inspect_err(|e| {
        if matches!(e, AccountError::WrongPassword) {
            state.limits.login_failed(address, username.as_str());
        }
    })?;
    Ok(signed_in(StatusCode::OK, &session, &headers))
}

/// `POST /api/v1/admin/logout`: ends the session (if any) and clears the cookie.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(token) = cookie(&headers, ADMIN_COOKIE) {
        check_same_origin(&headers, true)?;
        let (accounts, token) = (state.accounts.clone(), token.to_owned());
        run_blocking(move || Ok(accounts.log_out(&token)?)).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    set_cookie(
        &mut response,
        &format!("{ADMIN_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(response)
}

/// `GET /api/v1/admin/me`: who is signed in.
pub async fn me(axum::Extension(caller): axum::Extension<AdminCaller>) -> Json<Value> {
    Json(match caller {
        AdminCaller::Session(identity) => {
            json!({"username": identity.username, "via": "session"})
        }
        AdminCaller::Local => json!({"username": null, "via": "control_token"}),
    })
}

/// `GET /api/v1/admin/setup`: whether the first admin still has to be created.
pub async fn setup_status(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let accounts = state.accounts.clone();
    let has_admin = run_blocking(move || Ok(accounts.has_admin()?)).await?;
    Ok(Json(json!({"needed": !has_admin})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupBody {
    token: String,
    username: String,
    password: String,
}

/// `POST /api/v1/admin/setup`: spends the setup link's token on the first admin account.
pub async fn set_up(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: JsonBody<SetupBody>,
) -> Result<Response, ApiError> {
    check_same_origin(&headers, false)?;
    let SetupBody {
        token,
        username,
        password,
    } = body.value;
    let username = Username::parse(&username)?;
    let password = Password::parse_new(&password)?;
    let accounts = state.accounts.clone();
    let session = run_blocking(move || Ok(accounts.set_up(&token, &username, &password)?)).await?;
    tracing::info!(username = %session.username, "the first admin account was created");
    Ok(signed_in(StatusCode::CREATED, &session, &headers))
}

fn signed_in(status: StatusCode, session: &NewSession, headers: &HeaderMap) -> Response {
    let secure = if behind_tls(headers) { "; Secure" } else { "" };
    let cookie = format!(
        "{ADMIN_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        session.token,
        session.max_age.as_secs()
    );
    let mut response = (status, Json(json!({"username": session.username}))).into_response();
    set_cookie(&mut response, &cookie);
    response
}

/// Doodlebox itself speaks plain HTTP on the LAN; a TLS-terminating proxy in front of it says
/// so with `X-Forwarded-Proto: https`, and then the cookie is marked `Secure`.
fn behind_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn set_cookie(response: &mut Response, cookie: &str) {
    // The token is hex and the attributes ASCII, so the value is a valid header.
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (name.clone(), HeaderValue::from_str(value).unwrap()))
            .collect()
    }

    #[test]
    fn same_origin_requests_pass_and_others_are_refused() {
        let ok = headers(&[
            (header::HOST, "10.0.0.5:8080"),
            (header::ORIGIN, "http://10.0.0.5:8080"),
        ]);
        assert!(check_same_origin(&ok, true).is_ok());
        let referer = headers(&[
            (header::HOST, "10.0.0.5:8080"),
            (header::REFERER, "http://10.0.0.5:8080/admin/review"),
        ]);
        assert!(check_same_origin(&referer, true).is_ok());
        let evil = headers(&[
            (header::HOST, "10.0.0.5:8080"),
            (header::ORIGIN, "http://evil.example"),
        ]);
        assert!(check_same_origin(&evil, false).is_err());
        let none = headers(&[(header::HOST, "10.0.0.5:8080")]);
        assert!(check_same_origin(&none, true).is_err());
        assert!(check_same_origin(&none, false).is_ok());
    }

    #[test]
    fn the_admin_cookie_is_found_among_others() {
        let h = headers(&[(header::COOKIE, "doodlebox_player=abc; doodlebox_admin=f00d")]);
        assert_eq!(cookie(&h, ADMIN_COOKIE), Some("f00d"));
        assert_eq!(cookie(&h, PLAYER_COOKIE), Some("abc"));
        assert_eq!(cookie(&HeaderMap::new(), ADMIN_COOKIE), None);
    }
}
