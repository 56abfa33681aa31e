//! Import and export: Quick, Draw! ndjson in, every export format out.

use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::helpers::TestApp;

/// `n` generated raw Quick, Draw! lines of `word`, with integer x, y and t (ms since the
/// first point), keys `{prefix}{i}`.
pub fn raw_lines(word: &str, prefix: &str, n: usize, seed: u64) -> Vec<String> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let mut t = 0u32;
            let strokes: Vec<Value> = (0..rng.random_range(1..4))
                .map(|_| {
                    let len = rng.random_range(1..30);
                    let xs: Vec<i32> = (0..len).map(|_| rng.random_range(-20..900)).collect();
                    let ys: Vec<i32> = (0..len).map(|_| rng.random_range(-20..700)).collect();
                    let ts: Vec<u32> = (0..len)
                        .map(|_| {
                            t += rng.random_range(0..40);
                            t
                        })
                        .collect();
                    json!([xs, ys, ts])
                })
                .collect();
            json!({
                "word": word, "countrycode": "DE", "timestamp": "2017-03-01 10:00:00.12345 UTC",
                "recognized": i % 3 != 0, "key_id": format!("{prefix}{i}"), "drawing": strokes
            })
            .to_string()
        })
        .collect()
}

async fn import(app: &TestApp, query: &str, body: String) -> reqwest::Response {
    app.admin
        .post(app.url(&format!("/api/v1/admin/import{query}")))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .expect("request sent")
}

async fn import_json(app: &TestApp, query: &str, body: String) -> Value {
    let response = import(app, query, body).await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("JSON report")
}

#[tokio::test]
async fn an_import_with_bad_lines_reports_their_numbers_and_imports_the_rest() {
    let app = TestApp::spawn().await;
    let mut lines = raw_lines("circle", "c", 6, 1);
    lines.insert(1, "{not json".into());
    lines.insert(
        3,
        r#"{"word":"circle","key_id":"r","drawing":[[[1,2],[3]]]}"#.into(),
    );
    lines.insert(4, String::new()); // blank lines are skipped, not bad
    lines.insert(5, r#"{"word":"Not A Shape!","drawing":[[[1],[2]]]}"#.into());
    let report = import_json(&app, "", lines.join("\n")).await;
    assert_eq!(report["imported"], 6, "{report}");
    assert_eq!(report["skipped_duplicates"], 0);
    assert_eq!(report["bad_line_count"], 3);
    let numbers: Vec<u64> = report["bad_lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["line"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [2, 4, 6]);
    assert!(report["bad_lines"][1]["error"]
        .as_str()
        .unwrap()
        .contains("stroke 0"));
    assert_eq!(app.drawing_count().await, 6);
}

#[tokio::test]
async fn importing_the_same_lines_again_skips_every_one_even_within_one_file() {
    let app = TestApp::spawn().await;
    let lines = raw_lines("square", "s", 30, 2);
    let first = import_json(&app, "?source=squares.ndjson", lines.join("\n")).await;
    assert_eq!(first["imported"], 30);
    let mut twice = lines.clone();
    twice.extend(lines.iter().take(5).cloned());
    let again = import_json(&app, "?source=squares.ndjson", twice.join("\n")).await;
    assert_eq!(again["imported"], 0, "{again}");
    assert_eq!(again["skipped_duplicates"], 35);
    let doubled = raw_lines("square", "new", 2, 3);
    let within = import_json(&app, "", format!("{}\n{}\n", doubled[0], doubled[0])).await;
    assert_eq!(within["imported"], 1);
    assert_eq!(within["skipped_duplicates"], 1);
    assert_eq!(app.drawing_count().await, 31);
}

#[tokio::test]
async fn an_unknown_word_is_a_bad_line_unless_shapes_may_be_created() {
    let app = TestApp::spawn().await;
    let lines = raw_lines("lightning", "l", 3, 4).join("\n");
    let refused = import_json(&app, "", lines.clone()).await;
    assert_eq!(refused["imported"], 0);
    assert_eq!(refused["bad_line_count"], 3);
    assert!(refused["bad_lines"][0]["error"]
        .as_str()
        .unwrap()
        .contains("unknown shape `lightning`"));
    assert!(!shape_names(&app).await.contains(&"lightning".to_string()));
    let created = import_json(&app, "?create_shapes=true", lines).await;
    assert_eq!(created["imported"], 3, "{created}");
    assert_eq!(created["created_shapes"], json!(["lightning"]));
    assert!(shape_names(&app).await.contains(&"lightning".to_string()));
}

async fn shape_names(app: &TestApp) -> Vec<String> {
    let shapes: Value = app.get_json("/api/v1/shapes").await;
    let list = shapes.get("shapes").unwrap_or(&shapes);
    list.as_array()
        .expect("a list of shapes")
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn import_parameters_that_do_not_parse_are_refused_and_import_nothing() {
    let app = TestApp::spawn().await;
    let lines = raw_lines("circle", "p", 2, 5).join("\n");
    for query in ["?create_shapes=yes", "?source=", "?sauce=x"] {
        let response = import(&app, query, lines.clone()).await;
        assert_eq!(response.status(), 422, "{query}");
        assert_eq!(
            crate::helpers::error_code(response).await,
            "invalid_parameter"
        );
    }
    assert_eq!(app.drawing_count().await, 0);
}
