//! The OpenAPI document describes the whole API: the routers are walked (every path the
//! public and admin route lists mount, every method each path's `Allow` header names) and
//! each (method, path) under `/api/v1` must be documented, and each documented one routed.
//! Its security and error answers must say what the server does.

use std::collections::{BTreeMap, BTreeSet};

use doodlebox::http::{admin_routes, api_paths, Policy};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::auth::concrete;
use crate::helpers::TestApp;

/// A method no route takes: every path answers it `405` with the methods it does take in
/// `Allow`, after the admin guard has let the admin client through.
const PROBE: &str = "TRACE";

async fn document(app: &TestApp) -> Value {
    let response = reqwest::get(app.url("/api/v1/openapi.json"))
        .await
        .expect("request sent");
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("the document is JSON")
}

/// (METHOD, path) of every operation the document describes under `/api/v1`.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .filter(|(path, _)| path.starts_with("/api/v1"))
        .flat_map(|(path, operations)| {
            operations
                .as_object()
                .expect("operations")
                .keys()
                .filter(|key| key.as_str() != "parameters")
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect()
}

/// (METHOD, path) of every operation the routers answer, from the route lists they are built
/// from and the `Allow` header each path answers.
async fn routed(app: &TestApp) -> BTreeSet<(String, String)> {
    let probe = Method::from_bytes(PROBE.as_bytes()).unwrap();
    let mut operations = BTreeSet::new();
    for path in api_paths() {
        let response = app
            .admin
            .request(probe.clone(), app.url(&concrete(&path)))
            .send()
            .await
            .expect("request sent");
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{PROBE} {path}"
        );
        let allow = response.headers()["allow"].to_str().unwrap().to_owned();
        for method in allow.split(',').map(str::trim) {
            // axum answers HEAD wherever it answers GET; no route has a HEAD of its own.
            if method != "HEAD" {
                operations.insert((method.to_owned(), path.clone()));
            }
        }
    }
    operations
}

#[tokio::test]
async fn every_route_under_api_v1_is_documented_and_every_documented_one_is_routed() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let documented = documented(&doc);
    let routed = routed(&app).await;
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from openapi.json: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "documented operations no router has: {unrouted:?}"
    );
    assert!(routed.len() >= 60, "{} operations", routed.len());
    let admin = routed
        .iter()
        .filter(|(_, p)| p.starts_with("/api/v1/admin"))
        .count();
    assert!(admin >= 45, "{admin} admin operations");
}

#[tokio::test]
async fn each_admin_operation_documents_the_policy_that_guards_it() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let policies: BTreeMap<String, Policy> = admin_routes()
        .into_iter()
        .map(|r| (format!("/api/v1/admin{}", r.path), r.policy))
        .collect();
    let mut checked = 0;
    for (method, path) in documented(&doc) {
        let operation = &doc["paths"][&path][method.to_lowercase()];
        let security = operation["security"]
            .as_array()
            .unwrap_or_else(|| panic!("{method} {path} states its security"));
        let schemes: BTreeSet<&str> = security
            .iter()
            .flat_map(|alternative| alternative.as_object().unwrap().keys())
            .map(String::as_str)
            .collect();
        match policies.get(&path) {
            Some(Policy::Admin) => {
                assert_eq!(
                    schemes,
                    BTreeSet::from(["adminSession", "controlToken"]),
                    "{method} {path}"
                );
                let responses = operation["responses"].as_object().unwrap();
                for status in ["401", "403"] {
                    assert!(responses.contains_key(status), "{method} {path} {status}");
                }
            }
            Some(Policy::Public) => assert!(security.is_empty(), "{method} {path}"),
            None => assert!(
                !schemes.contains("adminSession"),
                "{method} {path} is public"
            ),
        }
        checked += 1;
    }
    assert!(checked >= 60);
    for scheme in ["adminSession", "controlToken", "apiKey", "playerCookie"] {
        assert!(
            doc["components"]["securitySchemes"][scheme].is_object(),
            "{scheme}"
        );
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["adminSession"]["name"],
        doodlebox::http::auth::ADMIN_COOKIE
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["playerCookie"]["name"],
        doodlebox::http::extract::PLAYER_COOKIE
    );
}

/// `node`, or what its `$ref` points at.
fn resolve<'a>(doc: &'a Value, node: &'a Value) -> &'a Value {
    match node["$ref"].as_str() {
        Some(target) => target
            .trim_start_matches("#/")
            .split('/')
            .fold(doc, |node, part| &node[part]),
        None => node,
    }
}

#[tokio::test]
async fn every_documented_error_answer_has_the_one_error_shape() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let mut checked = 0;
    for (method, path) in documented(&doc) {
        let responses = doc["paths"][&path][method.to_lowercase()]["responses"]
            .as_object()
            .unwrap();
        for (status, response) in responses {
            if status.as_str() < "400" {
                continue;
            }
            let response = resolve(&doc, response);
            assert_eq!(
                response["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/Error",
                "{method} {path} {status}"
            );
            checked += 1;
        }
    }
    assert!(checked > 200, "{checked}");
    // And the server answers that shape where the router itself refuses: a path parameter
    // that cannot parse, and a query that lacks what it needs.
    for (path, status, code) in [
        ("/api/v1/admin/jobs/not-a-number", 404, "not_found"),
        (
            "/api/v1/admin/training-jobs/99999999999999999999",
            404,
            "not_found",
        ),
        ("/api/v1/admin/models/compare?a=v1", 422, "invalid_query"),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status().as_u16(), status, "{path}");
        assert_eq!(crate::helpers::error_code(response).await, code, "{path}");
    }
}
