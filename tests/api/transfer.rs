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

/// Imports through the API: the upload answers `202` with an import job, which is followed
/// to its end; its result is the import report.
async fn import_json(app: &TestApp, query: &str, body: String) -> Value {
    let response = import(app, query, body).await;
    let job = crate::jobs::follow(app, response).await;
    assert_eq!(job["status"], "completed", "{job}");
    job["result"].clone()
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

async fn export(app: &TestApp, query: &str) -> reqwest::Response {
    app.get(&format!("/api/v1/admin/export?{query}")).await
}

async fn export_lines(app: &TestApp, query: &str) -> Vec<Value> {
    let response = export(app, query).await;
    assert_eq!(response.status(), 200, "{query}");
    let text = response.text().await.expect("body");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

#[tokio::test]
async fn raw_import_then_raw_export_gives_back_the_same_lines() {
    let app = TestApp::spawn().await;
    let mut lines = raw_lines("circle", "rt", 40, 6);
    lines.extend(raw_lines("triangle", "rt-t", 20, 7));
    import_json(&app, "", lines.join("\n")).await;
    let text = export(&app, "format=quickdraw-raw")
        .await
        .text()
        .await
        .unwrap();
    let exported: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let sent: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Values, not text: the generator writes keys in another order. Integers stay integers.
    assert_eq!(
        exported, sent,
        "integer x, y, t and every field come back as they went in"
    );
    let circles = export_lines(&app, "format=quickdraw-raw&shape=circle").await;
    assert_eq!(circles.len(), 40);
}

#[tokio::test]
async fn the_real_quick_draw_sample_survives_import_and_raw_export_exactly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/quickdraw");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("skipped: {} is absent", dir.display());
        return;
    };
    let app = TestApp::spawn().await;
    let mut originals = std::collections::HashMap::new();
    for entry in entries {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "ndjson") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let value: Value = serde_json::from_str(line).unwrap();
            originals.insert(value["key_id"].as_str().unwrap().to_owned(), value);
        }
        let report = import_json(&app, "?create_shapes=true", text).await;
        assert_eq!(report["bad_line_count"], 0, "{}: {report}", path.display());
    }
    let exported = export_lines(&app, "format=quickdraw-raw").await;
    assert_eq!(exported.len(), originals.len());
    for line in exported {
        let original = &originals[line["key_id"].as_str().unwrap()];
        // serde_json reads numbers into the same f64s whatever their shortest spelling.
        assert_eq!(&line, original);
    }
}

#[tokio::test]
async fn simplified_export_is_aligned_scaled_to_255_and_has_fewer_points() {
    let app = TestApp::spawn().await;
    let lines = raw_lines("square", "simple", 20, 8);
    import_json(&app, "", lines.join("\n")).await;
    let raw = export_lines(&app, "format=quickdraw-raw").await;
    let simplified = export_lines(&app, "format=quickdraw-simplified").await;
    assert_eq!(simplified.len(), 20);
    let count = |line: &Value| -> usize {
        line["drawing"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s[0].as_array().unwrap().len())
            .sum()
    };
    let (before, after): (usize, usize) = raw
        .iter()
        .zip(&simplified)
        .map(|(r, s)| (count(r), count(s)))
        .fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
    assert!(after < before, "RDP kept {after} of {before} points");
    for line in &simplified {
        assert!(line["key_id"].as_str().unwrap().starts_with("simple"));
        let strokes = line["drawing"].as_array().unwrap();
        assert!(strokes.iter().all(|s| s.as_array().unwrap().len() == 2));
        let values = |axis: usize| -> Vec<i64> {
            strokes
                .iter()
                .flat_map(|s| {
                    s[axis]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_i64().unwrap())
                })
                .collect()
        };
        let (xs, ys) = (values(0), values(1));
        assert!(xs.iter().chain(&ys).all(|v| (0..=255).contains(v)));
        assert_eq!(xs.iter().min(), Some(&0));
        assert_eq!(ys.iter().min(), Some(&0));
        assert_eq!(xs.iter().chain(&ys).max(), Some(&255));
    }
}

#[tokio::test]
async fn npy_export_is_a_numpy_file_of_784_bytes_per_drawing_of_one_shape() {
    let app = TestApp::spawn().await;
    import_json(&app, "", raw_lines("circle", "n", 7, 9).join("\n")).await;
    import_json(&app, "", raw_lines("heart", "h", 3, 10).join("\n")).await;
    let response = export(&app, "format=npy&shape=circle").await;
    assert_eq!(response.status(), 200);
    let bytes = response.bytes().await.unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + header_len) % 64, 0);
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(
        header.contains("'descr': '|u1'") && header.contains("'shape': (7, 784)"),
        "{header}"
    );
    let pixels = &bytes[10 + header_len..];
    assert_eq!(pixels.len(), 7 * 784);
    assert!(
        pixels.chunks(784).all(|row| row.iter().any(|&p| p > 128)),
        "every row has ink"
    );
}

#[tokio::test]
async fn npy_export_of_every_shape_is_one_npz_archive_that_numpy_loads() {
    let app = TestApp::spawn().await;
    import_json(&app, "", raw_lines("circle", "n", 7, 9).join("\n")).await;
    import_json(&app, "", raw_lines("heart", "h", 3, 10).join("\n")).await;
    let response = export(&app, "format=npy").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/zip");
    let disposition = response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.contains("doodlebox-all-bitmaps-") && disposition.ends_with(".npz\""),
        "{disposition}"
    );
    let bytes = response.bytes().await.unwrap();
    assert_eq!(&bytes[..4], b"PK\x03\x04", "a zip archive");
    let Some(python) = crate::helpers::test_python() else {
        return;
    };
    let path = app.data_dir.join("every-shape.npz");
    std::fs::write(&path, &bytes).unwrap();
    let script = "import sys, numpy as np\n\
                  a = np.load(sys.argv[1])\n\
                  print(sorted((k, a[k].shape, str(a[k].dtype), int(a[k].max())) for k in a.files))";
    let out = std::process::Command::new(python)
        .args(["-c", script])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "[('circle', (7, 784), 'uint8', 255), ('heart', (3, 784), 'uint8', 255)]"
    );
}

#[tokio::test]
async fn export_file_names_say_shape_filters_format_and_date() {
    let app = TestApp::spawn().await;
    import_json(&app, "", raw_lines("circle", "n", 2, 9).join("\n")).await;
    let name = |query: &'static str| {
        let app = &app;
        async move {
            let response = export(app, query).await;
            assert_eq!(response.status(), 200, "{query}");
            let value = response.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .to_owned();
            value
                .split("filename=\"")
                .nth(1)
                .unwrap()
                .trim_end_matches('"')
                .to_owned()
        }
    };
    let raw = name("format=quickdraw-raw").await;
    let simplified = name("format=quickdraw-simplified").await;
    let flagged = name("format=quickdraw-simplified&shape=circle&flagged=true").await;
    let today = time::OffsetDateTime::now_utc().date();
    let date = format!(
        "{:04}-{:02}-{:02}",
        today.year(),
        u8::from(today.month()),
        today.day()
    );
    assert_eq!(raw, format!("doodlebox-all-raw-{date}.ndjson"));
    assert_eq!(
        simplified,
        format!("doodlebox-all-simplified-{date}.ndjson")
    );
    assert_eq!(
        flagged,
        format!("doodlebox-circle-flagged-simplified-{date}.ndjson")
    );
}

#[tokio::test]
async fn jsonl_export_is_lossless_and_imports_into_another_server_unchanged() {
    let app = TestApp::spawn().await;
    let submitted = crate::helpers::sample_drawing();
    let response = app.submit(&app.client, &submitted, None).await;
    assert_eq!(response.status(), 201);
    let lines = export_lines(&app, "format=jsonl").await;
    assert_eq!(lines.len(), 1);
    assert_eq!(
        lines[0]["drawing"], submitted,
        "pressure, timestamps and styles survive"
    );
    assert_eq!(lines[0]["shape"], "circle");
    let other = TestApp::spawn().await;
    let text: Vec<String> = lines.iter().map(Value::to_string).collect();
    let report = import_json(&other, "", text.join("\n")).await;
    assert_eq!(report["imported"], 1, "{report}");
    let again = export_lines(&other, "format=jsonl").await;
    assert_eq!(again[0]["drawing"], submitted);
    let twice = import_json(&other, "", text.join("\n")).await;
    assert_eq!(twice["skipped_duplicates"], 1);
}

#[tokio::test]
async fn deleted_drawings_are_never_exported_and_asking_for_them_is_refused() {
    let app = TestApp::spawn().await;
    import_json(&app, "", raw_lines("line", "d", 3, 11).join("\n")).await;
    let all = export_lines(&app, "format=jsonl").await;
    let gone = all[1]["id"].as_str().unwrap();
    let deleted = app.delete(&format!("/api/v1/admin/drawings/{gone}")).await;
    assert_eq!(deleted.status(), 200);
    for format in ["quickdraw-raw", "quickdraw-simplified", "jsonl"] {
        let lines = export_lines(&app, &format!("format={format}")).await;
        assert_eq!(lines.len(), 2, "{format}");
    }
    let jsonl = export_lines(&app, "format=jsonl").await;
    assert!(jsonl.iter().all(|l| l["id"] != gone));
    for query in [
        "format=jsonl&deleted=any",
        "format=jsonl&deleted=true",
        "format=csv",
        "shape=line",
    ] {
        let response = export(&app, query).await;
        assert_eq!(response.status(), 422, "{query}");
        assert_eq!(crate::helpers::error_code(response).await, "invalid_filter");
    }
}
