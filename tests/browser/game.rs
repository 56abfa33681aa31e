//! The drawing game: drawings made with mouse, pen and finger arrive whole, one made while
//! the server is down arrives once, and the live guess says when it is offline.

use super::*;

// --- drawings --------------------------------------------------------------------------------

/// A closed loop of `MOVES` + 1 points around the middle of the visible board.
pub(crate) async fn loop_path(browser: &Browser) -> Result<Vec<(f64, f64)>> {
    let board = browser.board().await?;
    ensure!(
        board.visible_width > 100.0 && board.visible_height > 100.0,
        "the board is too small or off screen: {}x{} visible",
        board.visible_width,
        board.visible_height
    );
    let (cx, cy) = (board.visible_width / 2.0, board.visible_height / 2.0);
    let radius = 0.35 * board.visible_width.min(board.visible_height);
    Ok((0..=MOVES)
        .map(|i| {
            let a = std::f64::consts::TAU * i as f64 / MOVES as f64;
            // A wobbly circle: the radius changes, so no two moves are alike.
            let r = radius * (1.0 + 0.1 * (3.0 * a).sin());
            (cx + r * a.cos(), cy + r * a.sin())
        })
        .collect())
}

pub(crate) fn millis_since_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as f64)
        .unwrap_or(0.0)
}

/// Distance from `p` to the segment `a`-`b`.
fn distance_to_segment(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 == 0.0 {
        0.0
    } else {
        (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0)
    };
    (p.0 - a.0 - t * dx).hypot(p.1 - a.1 - t * dy)
}

/// Checks a stored drawing against the one stroke `drawn` with a `device` pointer between
/// `started` and `ended` (ms since the epoch).
pub(crate) fn check_drawing(
    drawing: &Value,
    device: &str,
    drawn: &Drawn,
    started: f64,
    ended: f64,
) {
    assert_eq!(drawing["device"], device, "{drawing}");
    let width = drawing["canvas"]["width"].as_f64().expect("canvas width");
    let height = drawing["canvas"]["height"].as_f64().expect("canvas height");
    assert_eq!(
        (width, height),
        drawn.canvas,
        "the canvas size is the board's"
    );
    let path = &drawn.path;
    let strokes = drawing["strokes"].as_array().expect("strokes");
    assert_eq!(strokes.len(), 1, "one stroke was drawn: {drawing}");
    let points = strokes[0]["points"].as_array().expect("points");
    assert!(
        points.len() >= MOVES,
        "{} points stored for {MOVES} pointer moves",
        points.len()
    );
    let mut last_time = f64::MIN;
    for point in points {
        let (x, y) = (point["x"].as_f64().unwrap(), point["y"].as_f64().unwrap());
        assert!(
            (0.0..=width).contains(&x) && (0.0..=height).contains(&y),
            "{point} lies outside the {width}x{height} canvas"
        );
        let off = path
            .windows(2)
            .map(|w| distance_to_segment((x, y), w[0], w[1]))
            .fold(f64::INFINITY, f64::min);
        assert!(
            off <= TOLERANCE,
            "{point} is {off:.1} px off the drawn path"
        );
        let t = point["timestamp"].as_f64().expect("timestamp");
        assert!(t >= last_time, "timestamps go backwards at {point}");
        // A second of slack either side: the page's clock is rounded to whole ms.
        assert!(
            (started - 1000.0..=ended + 1000.0).contains(&t),
            "timestamp {t} is outside the drawing's time [{started}, {ended}]"
        );
        last_time = t;
    }
    let near = |p: &Value, q: (f64, f64)| {
        (p["x"].as_f64().unwrap() - q.0).hypot(p["y"].as_f64().unwrap() - q.1) <= TOLERANCE
    };
    assert!(
        near(&points[0], path[0]),
        "the stroke starts at {} rather than {:?}",
        points[0],
        path[0]
    );
    assert!(
        near(&points[points.len() - 1], path[path.len() - 1]),
        "the stroke ends at {} rather than {:?}",
        points[points.len() - 1],
        path[path.len() - 1]
    );
}

/// Waits until the page has no drawing left to send and the server accepted `n`; their ids.
pub(crate) async fn wait_until_saved(browser: &Browser, n: usize) -> Vec<String> {
    let saved = browser
        .wait_for(
            "the queue to empty",
            "const d = window.doodlebox;
             return Promise.all([d.queueLength(), d.savedIds()])
                 .then(([queued, ids]) => ({queued, ids}));",
            |v| v["queued"] == 0 && v["ids"].as_array().is_some_and(|ids| ids.len() >= n),
        )
        .await;
    let ids: Vec<String> = saved["ids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|id| Some(id.as_str()?.to_owned()))
        .collect();
    assert_eq!(ids.len(), n, "the server accepted {ids:?}");
    ids
}

/// The player's drawing `id` as the API gives it back.
pub(crate) async fn fetch_drawing(base: &str, cookie: &str, id: &str) -> Value {
    let response = reqwest::Client::new()
        .get(format!("{base}/api/v1/drawings/{id}"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("GET the drawing");
    assert_eq!(response.status(), 200, "GET /api/v1/drawings/{id}");
    let body: Value = response.json().await.expect("JSON");
    body["drawing"].clone()
}

async fn drawings_stored(base: &str) -> u64 {
    let ready: Value = reqwest::get(format!("{base}/readyz"))
        .await
        .expect("GET /readyz")
        .json()
        .await
        .expect("JSON");
    ready["drawings"].as_u64().expect("a drawing count")
}

/// Plays one round on `screen` with a `device` pointer and checks what the server stored.
async fn draw_submit_and_check(tools: &Tools, screen: Screen, device: &str) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path());
    let browser = Browser::launch(tools, screen).await?;
    browser.goto(&format!("{}/", server.base)).await?;
    browser.wait_until_ready().await;
    let prompted = browser
        .js("return document.getElementById('prompt-shape').textContent")
        .await?;

    let path = loop_path(&browser).await?;
    let started = millis_since_epoch();
    let drawn = browser.draw(device, &path).await?;
    let ended = millis_since_epoch();
    browser.click("#submit").await?;
    let ids = wait_until_saved(&browser, 1).await;

    let cookie = browser.player_cookie().await?;
    let drawing = fetch_drawing(&server.base, &cookie, &ids[0]).await;
    let shape = drawing["shape"]
        .as_str()
        .context("shape")?
        .replace('_', " ");
    assert_eq!(prompted, json!(shape), "the prompted shape was stored");
    check_drawing(&drawing, device, &drawn, started, ended);
    assert_eq!(drawings_stored(&server.base).await, 1);
    Ok(())
}

// --- the tests -------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drawing_made_with_the_mouse_is_stored_with_its_points_timestamps_and_device(
) -> Result<()> {
    let Some(tools) = tools() else { return Ok(()) };
    let _one = ONE_BROWSER.lock().await;
    draw_submit_and_check(&tools, Screen::Desktop, "mouse").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_touch_drawing_on_a_phone_sized_screen_is_stored_with_device_touch() -> Result<()> {
    let Some(tools) = tools() else { return Ok(()) };
    let _one = ONE_BROWSER.lock().await;
    draw_submit_and_check(&tools, Screen::Phone, "touch").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drawing_submitted_while_the_server_is_down_is_stored_exactly_once_after_restart(
) -> Result<()> {
    let Some(tools) = tools() else { return Ok(()) };
    let _one = ONE_BROWSER.lock().await;
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path());
    let (addr, base) = (server.addr, server.base.clone());
    let browser = Browser::launch(&tools, Screen::Desktop).await?;
    browser.goto(&format!("{base}/")).await?;
    browser.wait_until_ready().await;
    // The cookie from the first visit is the player the drawing will belong to.
    let cookie = browser.player_cookie().await?;

    server.kill_9();
    let path = loop_path(&browser).await?;
    let started = millis_since_epoch();
    let drawn = browser.draw("mouse", &path).await?;
    let ended = millis_since_epoch();
    browser.click("#submit").await?;
    browser
        .wait_for(
            "the drawing to wait in the queue",
            "return window.doodlebox.queueLength().then((queued) => ({queued,
                 status: document.getElementById('queue-status').textContent}));",
            |v| v["queued"] == 1 && v["status"].as_str().is_some_and(|s| s.contains("waiting")),
        )
        .await;
    let sent = browser.js("return window.doodlebox.savedIds()").await?;
    assert_eq!(
        sent,
        json!([]),
        "nothing can be saved while the server is down"
    );

    let server = Server::start_at(dir.path(), addr);
    let ids = wait_until_saved(&browser, 1).await;
    assert_eq!(drawings_stored(&base).await, 1, "stored exactly once");
    let drawing = fetch_drawing(&base, &cookie, &ids[0]).await;
    check_drawing(&drawing, "mouse", &drawn, started, ended);

    // A reload neither resends it nor finds it still waiting.
    browser.refresh().await?;
    browser.wait_until_ready().await;
    let queued = browser.js("return window.doodlebox.queueLength()").await?;
    assert_eq!(queued, 0);
    assert_eq!(drawings_stored(&base).await, 1, "still stored exactly once");
    drop(server);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_guess_says_plainly_that_guessing_resumes_when_back_online() -> Result<()> {
    let Some(tools) = tools() else { return Ok(()) };
    let _one = ONE_BROWSER.lock().await;
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path());
    train_and_activate(&server).await?;
    let browser = Browser::launch(&tools, Screen::Desktop).await?;
    browser.goto(&format!("{}/", server.base)).await?;
    browser.wait_until_ready().await;
    let path = loop_path(&browser).await?;
    browser.draw("mouse", &path).await?;
    browser
        .wait_for(
            "a live guess",
            "const g = document.getElementById('guess'); return !g.hidden && g.textContent",
            |v| v.as_str().is_some_and(|t| !t.is_empty()),
        )
        .await;
    // The Wi-Fi drops (Chromium's own offline switch): the student keeps drawing.
    browser
        .session_command(
            reqwest::Method::POST,
            "/chromium/network_conditions",
            Some(json!({"network_conditions": {"offline": true, "latency": 0,
                "download_throughput": -1, "upload_throughput": -1}})),
        )
        .await?;
    let shifted: Vec<(f64, f64)> = path
        .iter()
        .map(|(x, y)| (x * 0.5 + 20.0, y * 0.5 + 20.0))
        .collect();
    browser.draw("mouse", &shifted).await?;
    browser
        .wait_for(
            "the offline message",
            "return document.getElementById('guess').textContent",
            |v| {
                v.as_str()
                    .is_some_and(|t| t.contains("resumes when you're back online"))
            },
        )
        .await;
    let shown = browser
        .js("return document.getElementById('guess').hidden")
        .await?;
    assert_eq!(shown, false, "the message is visible");
    Ok(())
}
