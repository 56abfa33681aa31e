//! Admin accounts: the setup link, sign-in and sign-out, the Origin check, the sign-in rate
//! limit, and the authorization matrix over every admin route.

use doodlebox::http::{admin_routes, Policy};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{error_code, TestApp, ADMIN_PASSWORD};

#[tokio::test]
async fn the_setup_link_creates_the_first_admin_once_and_signs_them_in() {
    let app = TestApp::spawn().await;
    let link = app
        .setup_link
        .clone()
        .expect("no admin yet, so a setup link");
    assert!(link.contains("/admin/setup?token="), "{link}");
    let token = link.split("token=").nth(1).unwrap();
    assert_eq!(app.get_json("/api/v1/admin/setup").await["needed"], true);

    let browser = app.browser();
    let setup = |token: &str, password: &str| {
        browser
            .post(app.url("/api/v1/admin/setup"))
            .json(&json!({"token": token, "username": "teacher", "password": password}))
            .send()
    };
    let wrong = setup("0123", ADMIN_PASSWORD).await.unwrap();
    assert_eq!(wrong.status(), 403);
    assert_eq!(error_code(wrong).await, "invalid_setup_token");
    let weak = setup(token, "short").await.unwrap();
    assert_eq!(weak.status(), 422);
    assert_eq!(error_code(weak).await, "invalid_credentials");

    let created = setup(token, ADMIN_PASSWORD).await.unwrap();
    assert_eq!(created.status(), 201);
    let cookie = created
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in ["doodlebox_admin=", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP cannot carry a Secure cookie"
    );
    let me: Value = browser
        .get(app.url("/api/v1/admin/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "teacher");

    let again = setup(token, ADMIN_PASSWORD).await.unwrap();
    assert_eq!(again.status(), 403, "the link works once");
    assert_eq!(app.get_json("/api/v1/admin/setup").await["needed"], false);
}

#[tokio::test]
async fn login_and_logout_open_and_end_a_server_side_session() {
    let app = TestApp::spawn().await;
    app.first_admin_session().await;
    let browser = app.browser();
    let login = |password: &str| {
        browser
            .post(app.url("/api/v1/admin/login"))
            .json(&json!({"username": "Teacher", "password": password}))
            .send()
    };
    let wrong = login("not the password").await.unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(error_code(wrong).await, "wrong_credentials");
    let me = browser
        .get(app.url("/api/v1/admin/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401);

    assert_eq!(login(ADMIN_PASSWORD).await.unwrap().status(), 200);
    let jobs = browser
        .get(app.url("/api/v1/admin/training-jobs"))
        .send()
        .await
        .unwrap();
    assert_eq!(jobs.status(), 200);

    let out = browser
        .post(app.url("/api/v1/admin/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    let after = browser
        .get(app.url("/api/v1/admin/training-jobs"))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401, "the session ended on the server");

    let bad_body = browser
        .post(app.url("/api/v1/admin/login"))
        .json(&json!({"username": "teacher"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_body.status(), 422);
}

#[tokio::test]
async fn a_state_changing_request_with_the_session_cookie_must_come_from_this_origin() {
    let app = TestApp::spawn().await;
    let browser = app.first_admin_session().await;
    let create_key = |origin: Option<&str>| {
        let mut request = browser
            .post(app.url("/api/v1/admin/keys"))
            .json(&json!({"name": "lab"}));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    let evil = create_key(Some("http://evil.example")).await.unwrap();
    assert_eq!(evil.status(), 403);
    assert_eq!(error_code(evil).await, "forbidden");
    assert_eq!(create_key(None).await.unwrap().status(), 201);
    let keys = app.get_json("/api/v1/admin/keys").await;
    assert_eq!(keys["keys"].as_array().map(Vec::len), Some(1), "{keys}");

    // Without Origin or Referer a cookie-borne POST is refused (a plain client here).
    let cookie_only = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let login = cookie_only
        .post(app.url("/api/v1/admin/login"))
        .json(&json!({"username": "teacher", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let no_origin = cookie_only
        .post(app.url("/api/v1/admin/keys"))
        .json(&json!({"name": "lab 2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_origin.status(), 403);
    let read = cookie_only
        .get(app.url("/api/v1/admin/keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200, "reads need no Origin");
}

#[tokio::test]
async fn sign_in_attempts_are_rate_limited_per_address() {
    let app = TestApp::spawn().await;
    app.first_admin_session().await;
    let browser = app.browser();
    let mut statuses = Vec::new();
    for i in 0..14 {
        let response = browser
            .post(app.url("/api/v1/admin/login"))
            .json(&json!({"username": format!("guess{i}"), "password": "wrong password"}))
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            assert!(response.headers().contains_key("retry-after"));
        }
        statuses.push(response.status().as_u16());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        4,
        "{statuses:?}"
    );
}

/// A browser-like client of `app` whose connections come from `ip` (any 127.x.y.z address
/// is this machine's loopback), so the server sees another client address.
fn browser_at(app: &TestApp, ip: [u8; 4]) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::ORIGIN, app.base.parse().unwrap());
    reqwest::Client::builder()
        .cookie_store(true)
        .default_headers(headers)
        .local_address(std::net::IpAddr::from(ip))
        .build()
        .unwrap()
}

async fn sign_in(client: &reqwest::Client, app: &TestApp, username: &str, password: &str) -> u16 {
    client
        .post(app.url("/api/v1/admin/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn guessing_from_one_address_never_locks_the_admin_out_of_another() {
    let app = TestApp::spawn().await;
    app.first_admin_session().await;
    let attacker = browser_at(&app, [127, 0, 0, 2]);
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(sign_in(&attacker, &app, "teacher", "not the password").await);
    }
    // Five failures block that address for that account; the rest are refused unchecked.
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429, 429]);
    // The right password from another address still signs in (only slowed down).
    let admin = browser_at(&app, [127, 0, 0, 3]);
    assert_eq!(sign_in(&admin, &app, "teacher", ADMIN_PASSWORD).await, 200);
    let me = admin.get(app.url("/api/v1/admin/me")).send().await.unwrap();
    assert_eq!(me.status(), 200);
    // Signing in successfully counts against nobody: an admin may sign in again and again.
    for _ in 0..12 {
        assert_eq!(sign_in(&admin, &app, "teacher", ADMIN_PASSWORD).await, 200);
    }
}

#[tokio::test]
async fn a_username_no_account_can_have_is_refused_before_any_limiter_keeps_it() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    for username in ["x".repeat(10_000), "a b".to_owned(), "é".repeat(3)] {
        let response = browser
            .post(app.url("/api/v1/admin/login"))
            .json(&json!({"username": username, "password": "whatever it is"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{username:.20}");
        assert_eq!(error_code(response).await, "invalid_credentials");
    }
}

/// Fills `{param}` segments with a plausible value.
pub(crate) fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| match segment {
            "{id}" => "1",
            "{version}" => "v1",
            s if s.starts_with('{') => "x",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_admin_route_answers_401_to_strangers_and_403_to_players_and_api_keys() {
    let app = TestApp::spawn().await;
    let player = crate::helpers::new_player();
    let shapes = player.get(app.url("/api/v1/shapes")).send().await.unwrap();
    assert_eq!(shapes.status(), 200, "the player now has a session cookie");
    let key = app
        .post_json("/api/v1/admin/keys", &json!({"name": "implementor"}))
        .await["key"]
        .as_str()
        .expect("key")
        .to_owned();
    let stranger = reqwest::Client::new();
    let implementor = crate::helpers::admin_client(&key);
    let routes = admin_routes();
    assert!(routes.len() >= 15, "the whole admin API is listed");
    let methods = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ];
    let mut checked = 0;
    for route in routes.iter().filter(|r| r.policy == Policy::Admin) {
        let url = app.url(&format!("/api/v1/admin{}", concrete(route.path)));
        for method in &methods {
            let anonymous = stranger.request(method.clone(), &url).send().await.unwrap();
            assert_eq!(anonymous.status(), 401, "{method} {url} anonymous");
            assert_eq!(error_code(anonymous).await, "unauthenticated");
            let as_player = player.request(method.clone(), &url).send().await.unwrap();
            assert_eq!(as_player.status(), 403, "{method} {url} as a player");
            let as_key = implementor
                .request(method.clone(), &url)
                .send()
                .await
                .unwrap();
            assert_eq!(as_key.status(), 403, "{method} {url} with an API key");
            checked += 1;
        }
        if route.path.contains("/events") {
            continue; // a stream: the admin check below would wait for it to end
        }
        let as_admin = app
            .get(&format!("/api/v1/admin{}", concrete(route.path)))
            .await;
        assert!(
            ![401, 403].contains(&as_admin.status().as_u16()),
            "GET {url} as admin: {}",
            as_admin.status()
        );
    }
    assert!(checked >= 60);
    for route in routes.iter().filter(|r| r.policy == Policy::Public) {
        let url = app.url(&format!("/api/v1/admin{}", route.path));
        let response = stranger.post(&url).send().await.unwrap();
        assert!(
            ![401, 403].contains(&response.status().as_u16()),
            "{url} is public: {}",
            response.status()
        );
    }
    let unknown = stranger
        .get(app.url("/api/v1/admin/no-such-thing"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 401, "unknown admin paths reveal nothing");
    assert_eq!(app.get("/api/v1/admin/no-such-thing").await.status(), 404);
}
