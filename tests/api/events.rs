//! The admin portal's live feed, `GET /api/v1/admin/events`: what it announces, what a
//! reconnecting listener gets (`Last-Event-ID`), and that it ends with the session that
//! opened it.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{new_player, sample_drawing, TestApp};

/// Long enough for a coalesced notice, a session check and a slow CI machine.
const WAIT: Duration = Duration::from_secs(15);

/// An open event stream, read chunk by chunk.
struct Feed {
    response: reqwest::Response,
    seen: String,
}

impl Feed {
    async fn open(browser: &reqwest::Client, app: &TestApp) -> Self {
        Self::open_after(browser, app, None).await
    }

    /// Opens the feed as a browser reconnecting after the event `last` does.
    async fn open_after(browser: &reqwest::Client, app: &TestApp, last: Option<&str>) -> Self {
        let mut request = browser.get(app.url("/api/v1/admin/events"));
        if let Some(last) = last {
            request = request.header("Last-Event-ID", last);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        Self {
            response,
            seen: String::new(),
        }
    }

    /// Reads until what arrived contains `text` (and forgets what came before it).
    async fn until(&mut self, text: &str) -> String {
        let found = tokio::time::timeout(WAIT, async {
            while !self.seen.contains(text) {
                let chunk = self.response.chunk().await.unwrap();
                let chunk = chunk.unwrap_or_else(|| panic!("the stream ended before {text:?}"));
                self.seen.push_str(&String::from_utf8_lossy(&chunk));
            }
        })
        .await;
        assert!(found.is_ok(), "no {text:?} within {WAIT:?}: {}", self.seen);
        let at = self.seen.find(text).unwrap() + text.len();
        let before = self.seen[..at].to_owned();
        self.seen.drain(..at);
        before
    }

    /// Reads the next whole event; its name, id and data lines.
    async fn next_event(&mut self) -> (String, String, String) {
        loop {
            let text = self.until("\n\n").await;
            let field = |name: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(name))
                    .unwrap_or_default()
                    .to_owned()
            };
            let event = (field("event: "), field("id: "), field("data: "));
            // A keep-alive comment is not an event.
            if !event.0.is_empty() || !event.2.is_empty() {
                return event;
            }
        }
    }

    /// Reads to the end of the stream; true when it ended within [`WAIT`].
    async fn ends(&mut self) -> bool {
        tokio::time::timeout(WAIT, async {
            while let Ok(Some(_)) = self.response.chunk().await {}
        })
        .await
        .is_ok()
    }
}

#[tokio::test]
async fn the_event_stream_announces_new_drawings_and_reviews_to_a_signed_in_admin() {
    let app = TestApp::spawn().await;
    let browser = app.first_admin_session().await;
    let mut feed = Feed::open(&browser, &app).await;
    feed.until("event: resync").await;

    let player = new_player();
    for _ in 0..5 {
        let response = app.submit(&player, &sample_drawing(), None).await;
        assert_eq!(response.status(), 201);
    }
    feed.until("event: drawings").await;

    let page = app.get_json("/api/v1/admin/drawings").await;
    let id = page["items"][0]["id"].as_str().unwrap().to_owned();
    let flagged = browser
        .post(app.url(&format!("/api/v1/admin/drawings/{id}/flag")))
        .send()
        .await
        .unwrap();
    assert_eq!(flagged.status(), 200);
    feed.until("event: reviewed").await;
    let reviewed = feed.until("\n\n").await;
    assert!(
        reviewed.contains(&id) && reviewed.contains("\"flag\""),
        "{reviewed}"
    );

    let threshold = app
        .admin
        .put(app.url("/api/v1/admin/settings/quality"))
        .json(&json!({"auto_flag_below": 0.99}))
        .send()
        .await
        .unwrap();
    assert_eq!(threshold.status(), 200);
    feed.until("event: threshold").await;
}

#[tokio::test]
async fn the_event_stream_ends_when_its_session_logs_out() {
    let app = TestApp::spawn().await;
    let browser = app.first_admin_session().await;
    let mut feed = Feed::open(&browser, &app).await;
    feed.until("event: resync").await;
    let out = browser
        .post(app.url("/api/v1/admin/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    assert!(feed.ends().await, "the stream outlived its session");
    let again = browser
        .get(app.url("/api/v1/admin/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 401, "no new stream without a session");
}

#[tokio::test]
async fn the_event_stream_refuses_anyone_but_an_admin() {
    let app = TestApp::spawn().await;
    let anonymous = reqwest::get(app.url("/api/v1/admin/events")).await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let player = new_player();
    app.submit(&player, &sample_drawing(), None).await;
    let as_player = player
        .get(app.url("/api/v1/admin/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(as_player.status(), 403);
}

#[tokio::test]
async fn a_reconnecting_feed_gets_what_it_missed_after_its_last_event_id_or_else_a_resync() {
    let app = TestApp::spawn().await;
    let browser = app.first_admin_session().await;
    let player = new_player();
    for _ in 0..2 {
        assert_eq!(
            app.submit(&player, &sample_drawing(), None).await.status(),
            201
        );
    }
    let page = app.get_json("/api/v1/admin/drawings").await;
    let id = page["items"][0]["id"].as_str().unwrap().to_owned();

    // Connected: the feed opens with a resync, then numbered notices.
    let mut feed = Feed::open(&browser, &app).await;
    let (event, mut last, _) = feed.next_event().await;
    assert_eq!(event, "resync");
    assert!(
        !last.is_empty(),
        "the resync names where the listener stands"
    );
    let threshold = |below: f64| {
        app.admin
            .put(app.url("/api/v1/admin/settings/quality"))
            .json(&json!({ "auto_flag_below": below }))
            .send()
    };
    assert_eq!(threshold(0.5).await.unwrap().status(), 200);
    loop {
        let (event, id, _) = feed.next_event().await;
        assert!(!id.is_empty(), "{event} has no id");
        last = id;
        if event == "threshold" {
            break;
        }
    }

    // The connection drops; meanwhile a drawing is flagged and the threshold changes.
    drop(feed);
    let flagged = browser
        .post(app.url(&format!("/api/v1/admin/drawings/{id}/flag")))
        .send()
        .await
        .unwrap();
    assert_eq!(flagged.status(), 200);
    assert_eq!(threshold(0.25).await.unwrap().status(), 200);

    // Reconnecting with the last id heard replays both, in order, with no resync.
    let mut feed = Feed::open_after(&browser, &app, Some(&last)).await;
    let mut heard = vec![];
    loop {
        let (event, id, data) = feed.next_event().await;
        assert_ne!(event, "resync", "replayable, yet resynchronised: {heard:?}");
        assert!(!id.is_empty(), "{event} has no id");
        heard.push((event.clone(), data));
        if event == "threshold" {
            break;
        }
    }
    let names: Vec<&str> = heard.iter().map(|(e, _)| e.as_str()).collect();
    let reviewed = names.iter().position(|e| *e == "reviewed");
    assert!(
        reviewed.is_some_and(|at| heard[at].1.contains(&id) && at < names.len() - 1),
        "the missed review comes before the missed threshold: {heard:?}"
    );
    drop(feed);

    // An id the server cannot replay from (garbage, or from before a restart) resyncs.
    let elsewhere = format!("{}-1", u64::MAX >> 2);
    for stale in ["not-an-id", elsewhere.as_str()] {
        let mut feed = Feed::open_after(&browser, &app, Some(stale)).await;
        let (event, id, _) = feed.next_event().await;
        assert_eq!(event, "resync", "after {stale:?}");
        assert_ne!(id, stale);
    }
}

#[tokio::test]
async fn job_changes_reach_the_event_stream_numbered_with_the_other_notices() {
    let app = TestApp::spawn().await;
    let browser = app.first_admin_session().await;
    let mut feed = Feed::open(&browser, &app).await;
    let (event, _, _) = feed.next_event().await;
    assert_eq!(event, "resync");
    let response = app
        .post("/api/v1/admin/backup", &json!({"name": "live"}))
        .await;
    assert_eq!(response.status(), 202);
    let last = loop {
        let (event, id, data) = feed.next_event().await;
        assert!(!id.is_empty(), "{event} has no id: {data}");
        if event == "job" && data.contains("\"completed\"") {
            assert!(data.contains("\"backup\""), "{data}");
            break id;
        }
    };
    // A listener that heard the job finish is up to date: a reconnection replays nothing.
    drop(feed);
    let mut feed = Feed::open_after(&browser, &app, Some(&last)).await;
    let nothing = tokio::time::timeout(Duration::from_millis(500), feed.next_event()).await;
    assert!(nothing.is_err(), "replayed after the last id: {nothing:?}");
}
