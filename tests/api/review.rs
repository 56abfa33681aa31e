//! The admin review API: listing with filters and totals, pagination, review actions, bulk,
//! players and blocks, purge, stats and thumbnails.

use std::collections::HashSet;

use doodlebox::config::Config;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{error_code, new_player, sample_drawing, TestApp};

fn drawing_of(shape: &str) -> Value {
    let mut d = sample_drawing();
    d["shape"] = json!(shape);
    d
}

/// Submits as `player` and answers the new drawing's id.
async fn submit(app: &TestApp, player: &reqwest::Client, shape: &str) -> String {
    let response = app.submit(player, &drawing_of(shape), None).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

fn ids(listing: &Value) -> Vec<String> {
    listing["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn listing(app: &TestApp, query: &str) -> Value {
    let response = app.get(&format!("/api/v1/admin/drawings{query}")).await;
    assert_eq!(response.status(), StatusCode::OK, "{query}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_listing_shows_every_drawing_newest_first_with_its_fields_and_total() {
    let app = TestApp::spawn().await;
    let first = submit(&app, &app.client, "circle").await;
    let second = submit(&app, &app.client, "square").await;
    let all = listing(&app, "").await;
    assert_eq!(ids(&all), vec![second.clone(), first]);
    assert_eq!(all["total"], 2);
    assert_eq!(all["next_cursor"], Value::Null);
    let item = &all["items"][0];
    assert_eq!(item["shape"], "square");
    assert_eq!(item["strokes"], 2);
    assert_eq!(item["points"], 4);
    assert_eq!(item["duration_ms"], 2500);
    assert_eq!(item["source"], "game");
    assert_eq!(item["is_flagged"], false);
    assert_eq!(item["deleted_at"], Value::Null);
    assert!(item["created_at"].as_i64().unwrap() > 1_700_000_000_000);
    assert_eq!(
        item["thumbnail_url"],
        format!("/api/v1/admin/drawings/{second}/thumbnail.png")
    );
}

async fn check(app: &TestApp, query: &str, expected: Vec<&String>) {
    let got = listing(app, query).await;
    let want: Vec<String> = expected.into_iter().cloned().collect();
    assert_eq!(ids(&got), want, "{query}");
    assert_eq!(got["total"], want.len(), "{query}");
}

async fn bulk(app: &TestApp, ids: Vec<&String>, action: &str) -> u64 {
    app.post_json(
        "/api/v1/admin/drawings/bulk",
        &json!({"ids": ids, "action": action}),
    )
    .await["changed"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn each_filter_narrows_the_listing_and_its_total() {
    let app = TestApp::spawn().await;
    let other = new_player();
    let circle = submit(&app, &app.client, "circle").await;
    let square = submit(&app, &app.client, "square").await;
    let theirs = submit(&app, &other, "circle").await;
    app.post(&format!("/api/v1/admin/drawings/{square}/flag"), &json!({}))
        .await;
    app.post(
        &format!("/api/v1/admin/drawings/{circle}/approve"),
        &json!({}),
    )
    .await;
    app.delete(&format!("/api/v1/admin/drawings/{theirs}"))
        .await;

    check(&app, "?shape=circle", vec![&circle]).await;
    check(&app, "?shape=circle&deleted=any", vec![&theirs, &circle]).await;
    check(&app, "?shape=heart", vec![]).await;
    check(&app, "?flagged=true", vec![&square]).await;
    check(&app, "?flagged=false", vec![&circle]).await;
    check(&app, "?deleted=true", vec![&theirs]).await;
    check(&app, "?reviewed=true", vec![&square, &circle]).await;
    check(&app, "?reviewed=false&deleted=any", vec![&theirs]).await;
    check(&app, "?min_quality=0&max_quality=1", vec![]).await; // nothing is scored yet
    let player = app
        .get_json(&format!("/api/v1/admin/drawings/{theirs}"))
        .await["player_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let got = listing(&app, &format!("?player={player}&deleted=any")).await;
    assert_eq!(ids(&got), vec![theirs.clone()]);
    let created = app
        .get_json(&format!("/api/v1/admin/drawings/{square}"))
        .await["created_at"]
        .as_i64()
        .unwrap();
    let got = listing(&app, &format!("?from={created}&to={}", created + 1)).await;
    assert!(ids(&got).contains(&square));
    assert!(got["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["created_at"] == created));
    let got = listing(&app, &format!("?to={created}")).await;
    assert!(!ids(&got).contains(&square));
}

#[tokio::test]
async fn pages_cover_every_drawing_exactly_once() {
    let app = TestApp::spawn().await;
    let mut submitted = HashSet::new();
    for i in 0..7 {
        let shape = ["circle", "square", "line"][i % 3];
        submitted.insert(submit(&app, &app.client, shape).await);
    }
    let mut seen = Vec::new();
    let mut query = "?limit=3".to_owned();
    loop {
        let page = listing(&app, &query).await;
        assert_eq!(page["total"], 7);
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7);
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), submitted);
}

#[tokio::test]
async fn a_bad_filter_is_refused_by_name_and_changes_nothing() {
    let app = TestApp::spawn().await;
    submit(&app, &app.client, "circle").await;
    for query in [
        "?flagged=yes",
        "?min_quality=2",
        "?limit=501",
        "?cursor=nope",
        "?shape=NO!",
        "?colour=red",
    ] {
        let response = app.get(&format!("/api/v1/admin/drawings{query}")).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_filter");
        let name = query[1..].split('=').next().unwrap();
        assert!(
            body["error"]["message"].as_str().unwrap().contains(name),
            "{body}"
        );
    }
    let bulk = app
        .post(
            "/api/v1/admin/drawings/bulk",
            &json!({"ids": ["not-an-id"], "action": "delete"}),
        )
        .await;
    assert_eq!(bulk.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let all = listing(&app, "").await;
    assert_eq!(all["total"], 1);
    assert_eq!(all["items"][0]["deleted_at"], Value::Null);
}

#[tokio::test]
async fn approve_flag_unflag_delete_and_restore_each_answer_the_changed_item() {
    let app = TestApp::spawn().await;
    let id = submit(&app, &app.client, "circle").await;
    let path = |action: &str| format!("/api/v1/admin/drawings/{id}/{action}");
    let flagged = app.post_json(&path("flag"), &json!({})).await;
    assert_eq!(flagged["is_flagged"], true);
    assert!(flagged["reviewed_at"].is_i64());
    let unflagged = app.post_json(&path("unflag"), &json!({})).await;
    assert_eq!(unflagged["is_flagged"], false);
    app.post_json(&path("flag"), &json!({})).await;
    let approved = app.post_json(&path("approve"), &json!({})).await;
    assert_eq!(approved["is_flagged"], false);
    assert!(approved["reviewed_at"].is_i64());

    let deleted: Value = app
        .delete(&format!("/api/v1/admin/drawings/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert!(deleted["deleted_at"].is_i64());
    // Hidden from the default listing and from its player.
    assert_eq!(listing(&app, "").await["total"], 0);
    let own = app
        .client
        .get(app.url(&format!("/api/v1/drawings/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::NOT_FOUND);

    let restored = app.post_json(&path("restore"), &json!({})).await;
    assert_eq!(restored["deleted_at"], Value::Null);
    assert_eq!(ids(&listing(&app, "").await), vec![id.clone()]);
    let own = app
        .client
        .get(app.url(&format!("/api/v1/drawings/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_detail_carries_the_whole_drawing_and_unknown_ids_are_404() {
    let app = TestApp::spawn().await;
    let id = submit(&app, &app.client, "circle").await;
    let detail = app.get_json(&format!("/api/v1/admin/drawings/{id}")).await;
    assert_eq!(detail["id"], id);
    assert_eq!(detail["drawing"], drawing_of("circle"));
    let unknown = "01890000-0000-7000-8000-000000000000";
    for response in [
        app.get(&format!("/api/v1/admin/drawings/{unknown}")).await,
        app.get(&format!("/api/v1/admin/drawings/{unknown}/thumbnail.png"))
            .await,
        app.post(
            &format!("/api/v1/admin/drawings/{unknown}/approve"),
            &json!({}),
        )
        .await,
        app.delete(&format!("/api/v1/admin/drawings/{unknown}"))
            .await,
        app.post(
            "/api/v1/admin/players/0123456789abcdef0123456789abcdef/block",
            &json!({}),
        )
        .await,
    ] {
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(error_code(response).await, "not_found");
    }
}

#[tokio::test]
async fn bulk_actions_count_only_the_drawings_they_change() {
    let app = TestApp::spawn().await;
    let a = submit(&app, &app.client, "circle").await;
    let b = submit(&app, &app.client, "circle").await;
    let c = submit(&app, &app.client, "square").await;
    assert_eq!(bulk(&app, vec![&a, &b], "flag").await, 2);
    assert_eq!(bulk(&app, vec![&a, &b, &c], "flag").await, 1);
    assert_eq!(listing(&app, "?flagged=true").await["total"], 3);
    assert_eq!(bulk(&app, vec![&a, &c], "delete").await, 2);
    assert_eq!(bulk(&app, vec![&a, &c], "delete").await, 0);
    assert_eq!(ids(&listing(&app, "").await), vec![b.clone()]);
    assert_eq!(bulk(&app, vec![&a], "restore").await, 1);
    assert_eq!(bulk(&app, vec![&a, &b], "unflag").await, 2);
    assert_eq!(bulk(&app, vec![&a, &b, &c], "approve").await, 1);
    let response = app
        .post(
            "/api/v1/admin/drawings/bulk",
            &json!({"ids": [a], "action": "burn"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn blocking_a_player_deletes_their_drawings_and_refuses_their_next_submission() {
    let app = TestApp::spawn().await;
    let other = new_player();
    let mine = submit(&app, &app.client, "circle").await;
    submit(&app, &app.client, "square").await;
    let theirs = submit(&app, &other, "circle").await;
    let player = app
        .get_json(&format!("/api/v1/admin/drawings/{mine}"))
        .await["player_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let blocked = app
        .post_json(&format!("/api/v1/admin/players/{player}/block"), &json!({}))
        .await;
    assert!(blocked["blocked_at"].is_i64());
    assert_eq!(blocked["drawings"], 0);
    assert_eq!(blocked["deleted"], 2);
    assert_eq!(ids(&listing(&app, "").await), vec![theirs]);

    let refused = app.submit(&app.client, &sample_drawing(), None).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(refused).await, "player_blocked");
    assert_eq!(listing(&app, "?deleted=any").await["total"], 3);

    let players = app.get_json("/api/v1/admin/players").await;
    let row = players["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == player.as_str())
        .unwrap()
        .clone();
    assert!(row["blocked_at"].is_i64());

    let unblocked = app
        .post_json(
            &format!("/api/v1/admin/players/{player}/unblock"),
            &json!({}),
        )
        .await;
    assert_eq!(unblocked["blocked_at"], Value::Null);
    let again = app.submit(&app.client, &sample_drawing(), None).await;
    assert_eq!(again.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn purge_removes_deleted_drawings_only_once_they_are_older_than_the_configured_days() {
    let app = TestApp::spawn().await; // the default keeps them 30 days
    let deleted = submit(&app, &app.client, "circle").await;
    app.delete(&format!("/api/v1/admin/drawings/{deleted}"))
        .await;
    let purged = app
        .post_json("/api/v1/admin/drawings/purge", &json!({}))
        .await;
    assert_eq!(purged["purged"], 0);
    assert_eq!(listing(&app, "?deleted=true").await["total"], 1);
    let dir = app.stop().await.unwrap();

    let mut config = Config::for_data_dir(dir.path());
    config.purge_after_days = 0;
    let app = TestApp::spawn_with(config).await;
    // The hourly task also runs at start, so the old one may be gone already; the one
    // deleted just now goes with the route's purge, and the one not deleted stays.
    let kept = submit(&app, &app.client, "square").await;
    let fresh = submit(&app, &app.client, "line").await;
    app.delete(&format!("/api/v1/admin/drawings/{fresh}")).await;
    let purged = app
        .post_json("/api/v1/admin/drawings/purge", &json!({}))
        .await;
    assert!(
        (1..=2).contains(&purged["purged"].as_u64().unwrap()),
        "{purged}"
    );
    assert_eq!(ids(&listing(&app, "?deleted=any").await), vec![kept]);
    for id in [deleted, fresh] {
        let gone = app.get(&format!("/api/v1/admin/drawings/{id}")).await;
        assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    }
    app.stop().await;
    drop(dir);
}

#[tokio::test]
async fn stats_figures_match_what_was_submitted() {
    let app = TestApp::spawn().await;
    let other = new_player();
    let a = submit(&app, &app.client, "circle").await;
    submit(&app, &app.client, "circle").await;
    let c = submit(&app, &other, "square").await;
    let d = submit(&app, &other, "line").await;
    app.post(&format!("/api/v1/admin/drawings/{a}/flag"), &json!({}))
        .await;
    app.post(&format!("/api/v1/admin/drawings/{c}/approve"), &json!({}))
        .await;
    app.delete(&format!("/api/v1/admin/drawings/{d}")).await;

    let stats = app.get_json("/api/v1/admin/stats").await;
    assert_eq!(stats["drawings"], 3);
    assert_eq!(stats["players"], 2);
    assert_eq!(stats["flagged"], 1);
    assert_eq!(stats["deleted"], 1);
    assert_eq!(stats["reviewed"], 2);
    assert!(stats["storage_bytes"].as_u64().unwrap() > 0);
    assert_eq!(stats["active_model"], Value::Null);
    assert!(stats["recent_jobs"].is_array());
    let shape = |name: &str| {
        stats["per_shape"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["shape"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(
        shape("circle"),
        json!({"shape": "circle", "count": 2, "flagged": 1, "deleted": 0})
    );
    assert_eq!(
        shape("line"),
        json!({"shape": "line", "count": 0, "flagged": 0, "deleted": 1})
    );
    let days = stats["per_day"].as_array().unwrap();
    assert_eq!(days.len(), 1);
    assert_eq!(days[0]["count"], 3);
    assert_eq!(days[0]["day"].as_str().unwrap().len(), 10);
}

#[tokio::test]
async fn a_thumbnail_is_a_png_of_the_asked_size() {
    let app = TestApp::spawn().await;
    let id = submit(&app, &app.client, "circle").await;
    for size in [32, 96, 512] {
        let response = app
            .get(&format!(
                "/api/v1/admin/drawings/{id}/thumbnail.png?size={size}"
            ))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "image/png");
        let bytes = response.bytes().await.unwrap();
        let image = image::load_from_memory(&bytes).unwrap();
        assert_eq!((image.width(), image.height()), (size, size));
        // Ink on white: not every pixel is white.
        let rgb = image.to_rgb8();
        assert!(rgb.pixels().any(|p| p.0 != [255, 255, 255]));
        assert!(rgb.pixels().any(|p| p.0 == [255, 255, 255]));
    }
    let bad = app
        .get(&format!("/api/v1/admin/drawings/{id}/thumbnail.png?size=8"))
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(bad).await, "invalid_filter");
}
