//! Real-browser tests of the drawing game: a headless Chromium, driven through chromedriver over
//! WebDriver, plays against the real binary. A drawing made with pointer actions must arrive
//! with its points, timestamps and device, and one submitted while the server is down must be
//! stored exactly once after a restart.
//!
//! The WebDriver client is the few W3C endpoints these tests use, spoken over `reqwest`:
//! fantoccini without its TLS features needs `hyper-util`'s `HttpConnector`, which this package
//! does not depend on.
//!
//! Without Chromium or chromedriver the tests print why and pass, except under `CI`, where
//! they fail: CI installs the Debian packages `chromium` and `chromium-driver`. `CHROMIUM` and
//! `CHROMEDRIVER` point at other binaries.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};

/// Where Debian's `chromium` and `chromium-driver` packages put the browser and its driver.
const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
const DEFAULT_CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The WebDriver spec's key for an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long any single wait in these tests may take before it fails.
const WAIT: Duration = Duration::from_secs(10);
/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(50);
/// Intermediate pointer moves in a drawn stroke.
const MOVES: usize = 40;
/// How far (CSS px) a stored point may lie from the path the pointer took: action coordinates
/// are whole viewport pixels, the board's origin may be fractional.
const TOLERANCE: f64 = 1.5;

/// A tablet held upright (CSS px); turned, it is the other way round.
const TABLET: (u32, u32) = (768, 1024);
/// How long a finger rests for a long press (the portal selects after 500 ms).
const LONG_PRESS: Duration = Duration::from_millis(700);

/// One browser at a time: the machines running these tests have few cores, and three
/// Chromiums at once make timing-dependent steps (a fling, a retry) needlessly slow.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// --- the real server: the one launcher shared with the process tests -------------------------

#[path = "common/server.rs"]
mod server;
#[path = "common/synthetic.rs"]
mod synthetic;

use doodlebox::ml::synth::Shape;
use server::Server;

// --- the browser -----------------------------------------------------------------------------

/// The browser binaries, or the reason the tests cannot run here.
struct Tools {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

/// Finds Chromium and chromedriver. `None` means skip; under `CI` a missing browser fails.
fn tools() -> Option<Tools> {
    let find = |var: &str, default: &str| {
        PathBuf::from(std::env::var_os(var).unwrap_or_else(|| default.into()))
    };
    let tools = Tools {
        chromium: find("CHROMIUM", DEFAULT_CHROMIUM),
        chromedriver: find("CHROMEDRIVER", DEFAULT_CHROMEDRIVER),
    };
    let missing: Vec<String> = [&tools.chromium, &tools.chromedriver]
        .into_iter()
        .filter(|p| !p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    if missing.is_empty() {
        return Some(tools);
    }
    let why = format!(
        "browser tests need {} (Debian packages `chromium` and `chromium-driver`, \
         or set CHROMIUM / CHROMEDRIVER)",
        missing.join(" and ")
    );
    assert!(std::env::var_os("CI").is_none(), "{why}");
    eprintln!("skipping: {why}");
    None
}

/// What the browser pretends to be.
#[derive(Clone, Copy)]
enum Screen {
    /// A 1280x900 desktop window with a mouse.
    Desktop,
    /// A 390x844 phone with a touch screen.
    Phone,
    /// A small 360x740 phone with a touch screen (where sideways scrolling shows first).
    SmallPhone,
    /// A 768x1024 tablet held upright, with a touch screen; [`Browser::rotate`] turns it.
    Tablet,
}

/// chromedriver with one headless Chromium session. Dropping it ends the session (which
/// quits Chromium) and kills chromedriver.
struct Browser {
    driver: Child,
    port: u16,
    session: String,
    http: reqwest::Client,
    /// Chromium's profile, fresh for every browser; removed after chromedriver is gone.
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn launch(tools: &Tools, screen: Screen) -> Result<Browser> {
        // Find a free port, then let chromedriver have it.
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let driver = Command::new(&tools.chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", tools.chromedriver.display()))?;
        let profile = tempfile::tempdir()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        let mut browser = Browser {
            driver,
            port,
            session: String::new(),
            http,
            _profile: profile,
        };
        browser.wait_until_driver_ready().await?;

        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        let mut options = json!({"binary": tools.chromium, "args": []});
        match screen {
            Screen::Desktop => args.push("--window-size=1280,900".to_owned()),
            Screen::Phone | Screen::SmallPhone => {
                let (w, h) = if matches!(screen, Screen::Phone) {
                    (390, 844)
                } else {
                    (360, 740)
                };
                args.push(format!("--window-size={w},{h}"));
                options["mobileEmulation"] = json!({
                    "deviceMetrics": {"width": w, "height": h, "pixelRatio": 3.0, "touch": true},
                    "userAgent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 \
                                  (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36",
                });
            }
            Screen::Tablet => {
                let (w, h) = TABLET;
                args.push(format!("--window-size={w},{h}"));
                options["mobileEmulation"] = json!({
                    "deviceMetrics": {"width": w, "height": h, "pixelRatio": 2.0, "touch": true},
                    "userAgent": "Mozilla/5.0 (Linux; Android 14; Pixel Tablet) AppleWebKit/537.36 \
                                  (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
                });
            }
        }
        options["args"] = json!(args);
        let created = browser
            .command(
                reqwest::Method::POST,
                "/session",
                Some(json!({"capabilities": {"alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": options,
                }}})),
            )
            .await
            .context("creating a Chromium session")?;
        browser.session = created["sessionId"]
            .as_str()
            .context("no sessionId")?
            .to_owned();
        Ok(browser)
    }

    async fn wait_until_driver_ready(&self) -> Result<()> {
        let url = format!("http://127.0.0.1:{}/status", self.port);
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(response) = self.http.get(&url).send().await {
                if let Ok(status) = response.json::<Value>().await {
                    if status["value"]["ready"] == true {
                        return Ok(());
                    }
                }
            }
            ensure!(
                Instant::now() < deadline,
                "chromedriver did not answer on port {}",
                self.port
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// One WebDriver command; the answer's `value`, or the driver's error as an error.
    async fn command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let mut request = self.http.request(method, &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.with_context(|| url.clone())?;
        let status = response.status();
        let mut answer: Value = response.json().await.with_context(|| url.clone())?;
        let value = answer["value"].take();
        if !status.is_success() {
            bail!(
                "WebDriver {path}: {status} {}: {}",
                value["error"],
                value["message"]
            );
        }
        Ok(value)
    }

    async fn session_command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let path = format!("/session/{}{path}", self.session);
        self.command(method, &path, body).await
    }

    async fn goto(&self, url: &str) -> Result<()> {
        self.session_command(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await?;
        Ok(())
    }

    async fn refresh(&self) -> Result<()> {
        self.session_command(reqwest::Method::POST, "/refresh", Some(json!({})))
            .await?;
        Ok(())
    }

    /// Runs `script` as a function body; a returned promise is awaited by the driver.
    async fn js(&self, script: &str) -> Result<Value> {
        self.session_command(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
        .with_context(|| format!("running {script:?}"))
    }

    /// Evaluates `script` until `done` accepts its value; fails after `WAIT`, showing `what`
    /// and the last value.
    async fn wait_for(&self, what: &str, script: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let last = self.js(script).await;
            match &last {
                Ok(value) if done(value) => return value.clone(),
                _ if Instant::now() >= deadline => {
                    panic!("timed out waiting for {what}; last {script:?} gave {last:?}")
                }
                _ => tokio::time::sleep(POLL).await,
            }
        }
    }

    async fn wait_until_ready(&self) {
        self.wait_for(
            "the game to be ready",
            "return window.doodlebox ? window.doodlebox.state() : 'no hook'",
            |v| v == "ready",
        )
        .await;
    }

    async fn click(&self, css: &str) -> Result<()> {
        let found = self
            .session_command(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await?;
        let id = found[ELEMENT_KEY]
            .as_str()
            .with_context(|| format!("no element id for {css} in {found}"))?;
        self.session_command(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await?;
        Ok(())
    }

    /// Draws one stroke through `path` (canvas coordinates) with a pointer of `kind`
    /// ("mouse" or "touch"), and returns the path as the board will see it.
    async fn draw(&self, kind: &str, path: &[(f64, f64)]) -> Result<Drawn> {
        let board = self.board().await?;
        let to_viewport = |&(x, y): &(f64, f64)| {
            (
                (board.left + x).round() as i64,
                (board.top + y).round() as i64,
            )
        };
        let points: Vec<(i64, i64)> = path.iter().map(to_viewport).collect();
        let (x, y) = points[0];
        let mut steps = vec![
            json!({"type": "pointerMove", "duration": 0, "origin": "viewport", "x": x, "y": y}),
            json!({"type": "pointerDown", "button": 0}),
        ];
        // About one move per frame, as a hand makes them.
        for &(x, y) in &points[1..] {
            steps.push(json!({
                "type": "pointerMove", "duration": 16, "origin": "viewport", "x": x, "y": y,
            }));
        }
        // Rest before lifting, as a hand does: a touch lifted while moving starts a fling, and
        // Chromium then swallows the next tap (on the Submit button, say).
        steps.push(json!({"type": "pause", "duration": 300}));
        steps.push(json!({"type": "pointerUp", "button": 0}));
        self.session_command(
            reqwest::Method::POST,
            "/actions",
            Some(json!({"actions": [{
                "type": "pointer",
                "id": format!("{kind}-1"),
                "parameters": {"pointerType": kind},
                "actions": steps,
            }]})),
        )
        .await?;
        self.session_command(reqwest::Method::DELETE, "/actions", None)
            .await?;
        Ok(Drawn {
            path: points
                .iter()
                .map(|&(x, y)| (x as f64 - board.left, y as f64 - board.top))
                .collect(),
            canvas: (board.width, board.height),
        })
    }

    /// Where the board's drawing area is in the viewport, scrolled into view first.
    async fn board(&self) -> Result<Board> {
        let rect = self
            .js("const c = document.getElementById('board');
                 c.scrollIntoView({block: 'center', inline: 'center'});
                 const r = c.getBoundingClientRect();
                 return {left: r.left + c.clientLeft, top: r.top + c.clientTop,
                         width: c.clientWidth, height: c.clientHeight,
                         viewportWidth: window.innerWidth, viewportHeight: window.innerHeight};")
            .await?;
        let get = |k: &str| {
            rect[k]
                .as_f64()
                .with_context(|| format!("board {k}: {rect}"))
        };
        Ok(Board {
            left: get("left")?,
            top: get("top")?,
            width: get("width")?,
            height: get("height")?,
            visible_width: get("viewportWidth")?.min(get("left")? + get("width")?) - get("left")?,
            visible_height: get("viewportHeight")?.min(get("top")? + get("height")?) - get("top")?,
        })
    }

    /// The HttpOnly player cookie, as a `Cookie` header value.
    async fn player_cookie(&self) -> Result<String> {
        let cookies = self
            .session_command(reqwest::Method::GET, "/cookie", None)
            .await?;
        let value = cookies
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == "doodlebox_player")
            .and_then(|c| c["value"].as_str())
            .with_context(|| format!("no doodlebox_player cookie in {cookies}"))?;
        Ok(format!("doodlebox_player={value}"))
    }

    /// Ends the session with a blocking request: this runs in `Drop`, maybe during a panic.
    fn delete_session(&self) -> std::io::Result<()> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_write_timeout(Some(Duration::from_secs(10)))?;
        write!(
            stream,
            "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.session, self.port
        )?;
        // The answer comes once Chromium has quit; chromedriver may keep the connection open
        // after it, so read only up to the end of its headers.
        let mut answer = Vec::new();
        let mut chunk = [0; 1024];
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut chunk)? {
                0 => break,
                n => answer.extend_from_slice(&chunk[..n]),
            }
        }
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.delete_session();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The board's drawing area in viewport coordinates (CSS px).
struct Board {
    left: f64,
    top: f64,
    width: f64,
    height: f64,
    /// How much of it is inside the viewport, from its top-left corner.
    visible_width: f64,
    visible_height: f64,
}

/// A stroke as the board saw it.
struct Drawn {
    /// The pointer's positions in canvas coordinates.
    path: Vec<(f64, f64)>,
    /// The board's size while it was drawn.
    canvas: (f64, f64),
}

// --- drawings --------------------------------------------------------------------------------

/// A closed loop of `MOVES` + 1 points around the middle of the visible board.
async fn loop_path(browser: &Browser) -> Result<Vec<(f64, f64)>> {
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

fn millis_since_epoch() -> f64 {
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
fn check_drawing(drawing: &Value, device: &str, drawn: &Drawn, started: f64, ended: f64) {
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
async fn wait_until_saved(browser: &Browser, n: usize) -> Vec<String> {
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
async fn fetch_drawing(base: &str, cookie: &str, id: &str) -> Value {
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

// --- the implementor page --------------------------------------------------------------------

/// Trains a one-epoch model on synthetic doodles through the admin API (with the control
/// token) and activates it; returns its version.
async fn train_and_activate(server: &Server) -> Result<String> {
    let token = &server.token;
    let admin = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.base);
    let created: Value = admin
        .post(url("/api/v1/admin/training-jobs"))
        .bearer_auth(token)
        .json(&json!({"source": "synthetic", "epochs": 1, "seed": 5}))
        .send()
        .await?
        .json()
        .await?;
    let id = created["job"]["id"].as_i64().context("a job id")?;
    // Training is not a wait on the page: it gets minutes, not `WAIT`.
    let deadline = Instant::now() + Duration::from_secs(240);
    let version = loop {
        let job: Value = admin
            .get(url(&format!("/api/v1/admin/training-jobs/{id}")))
            .bearer_auth(token)
            .send()
            .await?
            .json()
            .await?;
        match job["status"].as_str() {
            Some("completed") => {
                break job["model_version"]
                    .as_str()
                    .context("a version")?
                    .to_owned()
            }
            Some("failed" | "cancelled") => bail!("training failed: {job}"),
            _ => ensure!(Instant::now() < deadline, "training still not done: {job}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let activated = admin
        .post(url(&format!("/api/v1/admin/models/{version}/activate")))
        .bearer_auth(token)
        .json(&json!({}))
        .send()
        .await?;
    ensure!(
        activated.status().is_success(),
        "activation: {}",
        activated.status()
    );
    Ok(version)
}

/// Opens `/implement` on `screen` against a server with an active model, checks the model
/// card, draws a loop with a `device` pointer and checks that guesses show as bars.
async fn implement_page_guesses(tools: &Tools, screen: Screen, device: &str) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path());
    let version = train_and_activate(&server).await?;
    let browser = Browser::launch(tools, screen).await?;
    browser.goto(&format!("{}/implement", server.base)).await?;
    browser.wait_until_ready().await;
    let widths = browser
        .js("return [document.documentElement.scrollWidth, window.innerWidth]")
        .await?;
    assert!(
        widths[0].as_f64() <= widths[1].as_f64(),
        "the page is wider than the screen: {widths}"
    );

    // The model card: its version, a bar per class, and the labelled confusion picture.
    let card = browser
        .js(
            "return {version: document.getElementById('model-version').textContent,
                     bars: document.querySelectorAll('#class-bars li').length,
                     columns: document.querySelectorAll('#confusion .col-label').length,
                     rows: document.querySelectorAll('#confusion .row-label').length,
                     hidden: document.getElementById('model-card').hidden,
                     mistakes: document.querySelectorAll('#top-confusions li').length,
                     listed: window.doodlebox.model().top_confusions.length,
                     all_classes_button: document.getElementById('all-classes').hidden,
                     classes: window.doodlebox.model().classes};",
        )
        .await?;
    // Its mistakes, most frequent first (or one line saying there were none); five classes
    // are all shown, so there is no "show all" button.
    let listed = card["listed"].as_u64().unwrap_or(0);
    assert_eq!(card["mistakes"], json!(listed.max(1)), "{card}");
    assert_eq!(card["all_classes_button"], true, "{card}");
    let classes: Vec<String> = serde_json::from_value(card["classes"].clone())?;
    assert_eq!(card["version"], json!(version), "{card}");
    assert_eq!(card["hidden"], false, "{card}");
    assert_eq!(classes.len(), 5, "{card}");
    for key in ["bars", "columns", "rows"] {
        assert_eq!(card[key], json!(classes.len()), "{key}: {card}");
    }
    browser
        .wait_for(
            "the confusion picture to load",
            "const img = document.querySelector('#confusion img');
             return img && img.complete ? img.naturalWidth : 0;",
            |v| v.as_u64().is_some_and(|w| w > 0),
        )
        .await;

    let path = loop_path(&browser).await?;
    browser.draw(device, &path).await?;
    let shown = browser
        .wait_for(
            "guesses to show",
            "return {guesses: window.doodlebox.guesses(),
                     bars: document.querySelectorAll('#guess .guess-row .bar-fill').length,
                     hidden: document.getElementById('guess').hidden};",
            |v| v["bars"].as_u64().is_some_and(|n| n > 0) && v["hidden"] == false,
        )
        .await;
    let guesses: Vec<String> = serde_json::from_value(shown["guesses"].clone())?;
    assert_eq!(shown["bars"], json!(guesses.len()), "{shown}");
    assert!(
        guesses.len() <= 3 && guesses.iter().all(|g| classes.contains(g)),
        "{guesses:?} are not classes of {classes:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_implementor_page_shows_the_model_card_and_guesses_a_drawn_loop() -> Result<()> {
    let Some(tools) = tools() else { return Ok(()) };
    let _one = ONE_BROWSER.lock().await;
    implement_page_guesses(&tools, Screen::Desktop, "mouse").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_implementor_page_guesses_a_touch_drawing_on_a_phone_without_sideways_scrolling(
) -> Result<()> {
    let Some(tools) = tools() else { return Ok(()) };
    let _one = ONE_BROWSER.lock().await;
    implement_page_guesses(&tools, Screen::Phone, "touch").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_implementor_page_examples_use_its_own_origin_without_a_model() -> Result<()> {
    let Some(tools) = tools() else { return Ok(()) };
    let _one = ONE_BROWSER.lock().await;
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path());
    let browser = Browser::launch(&tools, Screen::Desktop).await?;
    browser.goto(&format!("{}/implement", server.base)).await?;
    browser.wait_until_ready().await;

    let missing = browser
        .js(
            "return {missing: document.getElementById('model-missing').hidden,
                     card: document.getElementById('model-card').hidden};",
        )
        .await?;
    assert_eq!(
        missing,
        json!({"missing": false, "card": true}),
        "no model: the page says so"
    );

    let curl = browser.js("return window.doodlebox.example()").await?;
    let curl = curl.as_str().context("example text")?;
    assert!(
        curl.contains(&format!("curl -sS {}/api/v1/classify ", server.base)),
        "{curl}"
    );
    assert!(
        curl.contains("Authorization: Bearer $DOODLEBOX_KEY"),
        "{curl}"
    );
    browser.click(".tab[data-example='python-batch']").await?;
    let python = browser.js("return window.doodlebox.example()").await?;
    let python = python.as_str().context("example text")?;
    assert!(
        python.contains(&format!("DOODLEBOX = \"{}\"", server.base)),
        "{python}"
    );
    assert!(python.contains("/api/v1/classify/batch"), "{python}");
    assert!(python.contains("at most 64 per request"), "{python}");
    let link = browser
        .js("return document.getElementById('openapi-link').getAttribute('href')")
        .await?;
    assert_eq!(link, json!("/api/v1/openapi.json"));
    Ok(())
}

// --- the admin portal ------------------------------------------------------------------------

/// WebDriver's key value for Enter.
const ENTER: &str = "\u{E007}";
/// The first admin's password in these tests (the setup page asks for 10 characters).
const ADMIN_PASSWORD: &str = "correct horse battery";

impl Server {
    /// The setup link the server printed (a fresh data directory has no admin yet).
    fn setup_link(&self) -> Result<String> {
        self.printed("admin setup: ")
            .map(|link| link.trim().to_owned())
            .context("the server printed no `admin setup: ` line")
    }
}

impl Browser {
    /// Presses and releases one key in the focused element.
    async fn press(&self, key: &str) -> Result<()> {
        self.session_command(
            reqwest::Method::POST,
            "/actions",
            Some(json!({"actions": [{
                "type": "key",
                "id": "keyboard",
                "actions": [{"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}],
            }]})),
        )
        .await?;
        self.session_command(reqwest::Method::DELETE, "/actions", None)
            .await?;
        Ok(())
    }

    /// Saves a PNG of the viewport to `docs/screenshots/<name>`.
    async fn screenshot(&self, name: &str) -> Result<()> {
        let encoded = self
            .session_command(reqwest::Method::GET, "/screenshot", None)
            .await?;
        let png = decode_base64(encoded.as_str().context("screenshot data")?)?;
        ensure!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(name), png)?;
        Ok(())
    }

    /// Waits until the portal shows `screen`, loaded.
    async fn wait_for_screen(&self, screen: &str) {
        self.wait_for(
            &format!("the {screen} screen"),
            "return window.doodleboxAdmin ? window.doodleboxAdmin.ready() : null",
            |v| v == screen,
        )
        .await;
    }

    /// Waits until every `<img>` on the page has loaded (for screenshots).
    async fn wait_for_images(&self) {
        self.wait_for(
            "the pictures to load",
            "return [...document.images].every((i) => i.complete && i.naturalWidth > 0)",
            |v| v == true,
        )
        .await;
    }
}

/// Standard base64 (what WebDriver screenshots are sent in).
fn decode_base64(text: &str) -> Result<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut bits, mut count) = (0u32, 0u32);
    for byte in text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'=')
    {
        let value = ALPHABET
            .iter()
            .position(|&c| c == byte)
            .with_context(|| format!("{:?} is not base64", byte as char))?;
        bits = (bits << 6) | value as u32;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    Ok(out)
}

/// Submits `n` doodles as one player; returns their ids, oldest first.
async fn submit_doodles(base: &str, n: usize) -> Result<Vec<String>> {
    let player = reqwest::Client::builder().cookie_store(true).build()?;
    let shapes = [Shape::Circle, Shape::Square, Shape::Triangle, Shape::Line];
    let mut ids = Vec::new();
    for i in 0..n {
        let response = player
            .post(format!("{base}/api/v1/drawings"))
            .header("Idempotency-Key", format!("admin-ui-test-{i}"))
            .json(&synthetic::timed_doodle_json(
                shapes[i % shapes.len()],
                i as u64,
            ))
            .send()
            .await?;
        ensure!(
            response.status().is_success(),
            "submitting: {}",
            response.status()
        );
        let created: Value = response.json().await?;
        ids.push(created["id"].as_str().context("an id")?.to_owned());
    }
    Ok(ids)
}

/// Reads one drawing's review item through the admin API, with the control token.
async fn review_item(server: &Server, id: &str) -> Result<Value> {
    let token = &server.token;
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/admin/drawings/{id}", server.base))
        .bearer_auth(token)
        .send()
        .await?;
    ensure!(response.status().is_success(), "{}", response.status());
    Ok(response.json().await?)
}

/// Polls the API until the drawing's item satisfies `done`.
async fn wait_for_item(
    server: &Server,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Result<Value> {
    poll_until(what, || review_item(server, id), done).await
}

/// Reads `read` every [`POLL`] until its value satisfies `done`; fails after [`WAIT`].
async fn poll_until<Read, Reading>(
    what: &str,
    read: Read,
    done: impl Fn(&Value) -> bool,
) -> Result<Value>
where
    Read: Fn() -> Reading,
    Reading: std::future::Future<Output = Result<Value>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        let value = read().await?;
        if done(&value) {
            return Ok(value);
        }
        ensure!(
            Instant::now() < deadline,
            "{what}: the API still shows {value}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Reads one shape of the admin shape list, with the control token.
async fn admin_shape(server: &Server, name: &str) -> Result<Value> {
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/admin/shapes", server.base))
        .bearer_auth(&server.token)
        .send()
        .await?;
    ensure!(response.status().is_success(), "{}", response.status());
    let list: Value = response.json().await?;
    list["items"]
        .as_array()
        .and_then(|items| items.iter().find(|s| s["name"] == name))
        .cloned()
        .with_context(|| format!("no shape {name} in {list}"))
}

/// Polls the admin shape list until the shape called `name` satisfies `done`.
async fn wait_for_shape(
    server: &Server,
    name: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Result<Value> {
    poll_until(what, || admin_shape(server, name), done).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_signs_in_by_the_setup_link_and_reviews_drawings_with_the_keyboard() -> Result<()>
{
    let Some(tools) = tools() else { return Ok(()) };
    let _one = ONE_BROWSER.lock().await;
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path());
    let ids = submit_doodles(&server.base, 12).await?;

    // The first admin account, made through the setup page, lands on the dashboard.
    let browser = Browser::launch(&tools, Screen::Desktop).await?;
    set_up_admin(&browser, &server).await?;
    let dashboard = browser
        .js("return {bars: document.querySelectorAll('#chart-per-shape svg.chart .bar rect').length,
                     tiles: [...document.querySelectorAll('.tile-value')].map((t) => t.textContent),
                     who: document.getElementById('who').textContent}")
        .await?;
    assert!(
        dashboard["bars"].as_u64().is_some_and(|n| n >= 4),
        "a bar per shape: {dashboard}"
    );
    assert_eq!(dashboard["tiles"][0], "12", "{dashboard}");
    assert_eq!(dashboard["who"], "Signed in as teacher", "{dashboard}");
    browser
        .wait_for(
            "the newest drawings' thumbnails",
            "return document.querySelectorAll('.strip img').length",
            |v| v.as_u64().is_some_and(|n| n > 0),
        )
        .await;
    browser.wait_for_images().await;
    browser.screenshot("admin-dashboard.png").await?;

    // The review grid shows the drawings, newest first, as server-rendered thumbnails.
    browser.js("location.hash = '#/review'").await?;
    browser.wait_for_screen("review").await;
    let shown = browser
        .js("return window.doodleboxAdmin.review.ids()")
        .await?;
    let expected: Vec<String> = serde_json::from_value(shown)?;
    let (mut sorted, mut submitted) = (expected.clone(), ids.clone());
    sorted.sort();
    submitted.sort();
    assert_eq!(sorted, submitted, "every drawing submitted is in the grid");
    let newest = expected[0].clone();
    browser.wait_for_images().await;
    browser
        .js("document.querySelector('#review-grid .thumb').focus()")
        .await?;
    browser.screenshot("admin-review.png").await?;

    // f flags the focused drawing.
    browser.press("f").await?;
    wait_for_item(&server, &newest, "flag", |i| {
        i["is_flagged"] == true && !i["reviewed_at"].is_null()
    })
    .await?;
    // d deletes it (softly), u restores it.
    browser.press("d").await?;
    wait_for_item(&server, &newest, "delete", |i| !i["deleted_at"].is_null()).await?;
    browser
        .wait_for(
            "the deleted mark on the thumbnail",
            "return document.querySelector('#review-grid .cell').classList.contains('is-deleted')",
            |v| v == true,
        )
        .await;
    browser.press("u").await?;
    wait_for_item(&server, &newest, "restore", |i| i["deleted_at"].is_null()).await?;
    // j moves to the next drawing; a approves it.
    browser.press("j").await?;
    let focused = browser
        .js("return window.doodleboxAdmin.review.focused()")
        .await?;
    assert_eq!(focused, json!(expected[1]));
    browser.press("a").await?;
    wait_for_item(&server, &expected[1], "approve", |i| {
        i["is_flagged"] == false && !i["reviewed_at"].is_null()
    })
    .await?;

    // Enter opens the detail view, whose canvas replays the strokes.
    browser.press("k").await?;
    browser.press(ENTER).await?;
    browser
        .wait_for(
            "the detail view",
            "return window.doodleboxAdmin.review.detail()",
            |v| v == &json!(newest),
        )
        .await;
    browser
        .wait_for(
            "ink on the replay canvas",
            "const c = document.getElementById('replay');
             const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
             let ink = 0;
             for (let i = 0; i < data.length; i += 4) if (data[i] < 128 && data[i + 3] > 0) ink += 1;
             return ink;",
            |v| v.as_u64().is_some_and(|n| n > 50),
        )
        .await;
    let open = browser
        .js("return document.getElementById('detail').open")
        .await?;
    assert_eq!(open, true);
    browser
        .wait_for(
            "the replay to end",
            "return document.getElementById('detail').dataset.replay",
            |v| v == "done",
        )
        .await;
    browser.screenshot("admin-detail.png").await?;
    browser.press("\u{E00C}").await?; // Escape
    browser
        .wait_for(
            "the detail view to close",
            "return document.getElementById('detail').open",
            |v| v == false,
        )
        .await;

    // Every other screen loads without an error (one whose route is missing says so
    // calmly), and the player who drew shows with their count.
    for screen in ["players", "shapes", "training", "models", "data", "keys"] {
        browser.js(&format!("location.hash = '#/{screen}'")).await?;
        browser.wait_for_screen(screen).await;
        let alert = browser
            .js("const a = document.querySelector('#view [role=alert]'); return a && a.textContent")
            .await?;
        assert_eq!(alert, Value::Null, "the {screen} screen shows an error");
    }
    browser.js("location.hash = '#/players'").await?;
    browser.wait_for_screen("players").await;
    let players = browser
        .js("return [...document.querySelectorAll('#players tbody tr')].map((r) => r.cells[2].textContent)")
        .await?;
    assert_eq!(players, json!(["12"]), "one player with 12 drawings");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_without_an_admin_session_opening_the_portal_is_sent_to_the_login_page(
) -> Result<()> {
    let Some(tools) = tools() else { return Ok(()) };
    let _one = ONE_BROWSER.lock().await;
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path());
    let browser = Browser::launch(&tools, Screen::Desktop).await?;
    // A player first: the game gives this browser its player cookie.
    browser.goto(&format!("{}/", server.base)).await?;
    browser.wait_until_ready().await;
    browser
        .goto(&format!("{}/admin/#/review", server.base))
        .await?;
    let landed = browser
        .wait_for(
            "the login page",
            "return location.pathname + location.search",
            |v| v.as_str().is_some_and(|p| p.starts_with("/admin/login")),
        )
        .await;
    assert_eq!(
        landed,
        json!("/admin/login?next=%2Fadmin%2F%23%2Freview"),
        "comes back to the review screen after signing in"
    );
    let form = browser
        .js("return Boolean(document.getElementById('login-form'))")
        .await?;
    assert_eq!(form, true);
    Ok(())
}

// --- the live portal (issue #15) ---------------------------------------------------------------

/// Signs in the first admin through the setup page; lands on the dashboard.
async fn set_up_admin(browser: &Browser, server: &Server) -> Result<()> {
    let link = server.setup_link()?;
    let token = link
        .split_once("token=")
        .map(|(_, t)| t.to_owned())
        .with_context(|| format!("no token in {link}"))?;
    browser
        .goto(&format!("{}/admin/setup?token={token}", server.base))
        .await?;
    browser
        .js(&format!(
            "document.getElementById('username').value = 'teacher';
             document.getElementById('password').value = '{ADMIN_PASSWORD}';
             document.getElementById('password2').value = '{ADMIN_PASSWORD}';"
        ))
        .await?;
    browser.click("#setup-form button[type=submit]").await?;
    browser.wait_for_screen("dashboard").await;
    Ok(())
}

/// Counts every fetch the page makes from now on, and notes how many had been made when the
/// drawings tile last changed.
const FETCH_COUNTER: &str = "
    window.__fetches = [];
    if (!window.__fetchWrapped) {
      const real = window.fetch;
      window.fetch = (...args) => { window.__fetches.push(String(args[0])); return real(...args); };
      window.__fetchWrapped = true;
    }
    window.__tileChange = null;
    const tile = () => document.querySelector('[data-tile=drawings] .tile-value');
    const before = tile() && tile().textContent;
    const observer = new MutationObserver(() => {
      const t = tile();
      const text = t && t.textContent;
      // The first change of the figure only: a later refetch must not hide what came first.
      if (window.__tileChange || text === before) return;
      window.__tileChange = { text, fetches: window.__fetches.slice() };
    });
    observer.observe(document.getElementById('view'), { subtree: true, childList: true, characterData: true });
";

/// Submits one drawing and waits (at most 2 s) for the dashboard to show `expected`
/// drawings; answers the fetches the page had made when the tile changed.
async fn count_rises(browser: &Browser, base: &str, expected: &str, seed: usize) -> Result<Value> {
    browser.js(FETCH_COUNTER).await?;
    let player = reqwest::Client::builder().cookie_store(true).build()?;
    let response = player
        .post(format!("{base}/api/v1/drawings"))
        .json(&synthetic::timed_doodle_json(
            Shape::Circle,
            1000 + seed as u64,
        ))
        .send()
        .await?;
    ensure!(response.status().is_success(), "{}", response.status());
    let submitted = Instant::now();
    let change = browser
        .wait_for(
            "the drawing count to rise",
            "return window.__tileChange",
            |v| v["text"] == expected,
        )
        .await;
    let took = submitted.elapsed();
    assert!(
        took <= Duration::from_secs(2),
        "the count rose after {took:?}"
    );
    Ok(change["fetches"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_stays_live_over_one_event_stream_that_reconnects_after_a_restart() -> Result<()>
{
    let Some(tools) = tools() else { return Ok(()) };
    let _one = ONE_BROWSER.lock().await;
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path());
    let (addr, base) = (server.addr, server.base.clone());
    submit_doodles(&base, 3).await?;
    let browser = Browser::launch(&tools, Screen::Desktop).await?;
    set_up_admin(&browser, &server).await?;
    browser
        .wait_for(
            "the live feed",
            "return document.documentElement.dataset.live",
            |v| v == "open",
        )
        .await;
    // Not waiting for a server: letting the refetch that the stream's opening `resync` asks
    // for finish, so that what follows counts only what a new drawing causes.
    tokio::time::sleep(Duration::from_millis(1000)).await;

    // A new drawing raises the count with no request at all: the stream carried it.
    let fetches = count_rises(&browser, &base, "4", 0).await?;
    assert_eq!(fetches, json!([]), "no request but the event stream");

    // The server restarts on the same address: the stream reconnects and resynchronises.
    drop(server);
    browser
        .wait_for(
            "the stream to notice",
            "return document.documentElement.dataset.live",
            |v| v != "open",
        )
        .await;
    let server = Server::start_at(dir.path(), addr);
    browser
        .wait_for(
            "the stream to reconnect",
            "return document.documentElement.dataset.live",
            |v| v == "open",
        )
        .await;
    count_rises(&browser, &base, "5", 1).await?;

    // Signing out ends the stream (and the page goes to the sign-in page).
    browser.click("#logout").await?;
    browser
        .wait_for("the sign-in page", "return location.pathname", |v| {
            v == "/admin/login"
        })
        .await;
    drop(server);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_started_in_the_portal_trains_the_network_chosen_and_the_models_list_says_which(
) -> Result<()> {
    let Some(tools) = tools() else { return Ok(()) };
    let _one = ONE_BROWSER.lock().await;
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path());
    let browser = Browser::launch(&tools, Screen::Desktop).await?;
    set_up_admin(&browser, &server).await?;
    browser.js("location.hash = '#/training'").await?;
    browser.wait_for_screen("training").await;
    // Generated doodles train the small net unless told otherwise: the wide one is chosen.
    browser
        .js("const form = document.getElementById('start-training');
             form.querySelector('[name=source]').value = 'synthetic';
             form.querySelector('[name=architecture]').value = 'wide';
             form.querySelector('[name=epochs]').value = '1';")
        .await?;
    browser.click("#start-training button[type=submit]").await?;
    // Training is not a wait on the page: it gets minutes, not `WAIT`.
    let deadline = Instant::now() + Duration::from_secs(240);
    let version = loop {
        let model = browser
            .js("const a = document.querySelector('#job-model a'); return a ? a.textContent : null")
            .await?;
        if let Some(text) = model.as_str().filter(|t| !t.is_empty()) {
            break text.to_owned();
        }
        ensure!(
            Instant::now() < deadline,
            "the job view never linked a model: {}",
            browser
                .js("return document.getElementById('job-status').textContent")
                .await?
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let jobs: Value = reqwest::Client::new()
        .get(format!("{}/api/v1/admin/training-jobs", server.base))
        .bearer_auth(&server.token)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        jobs["items"][0]["config"]["architecture"], "wide",
        "the form sent the network chosen: {jobs}"
    );
    browser.js("location.hash = '#/models'").await?;
    browser.wait_for_screen("models").await;
    let network = browser
        .js("const headers = [...document.querySelectorAll('#models thead th')].map((th) => th.textContent);
             const row = document.querySelector('#models tbody tr');
             return [row.dataset.version, row.children[headers.indexOf('Network')].textContent];")
        .await?;
    assert_eq!(
        network[0],
        version.as_str(),
        "the job's model is the one listed"
    );
    assert_eq!(network[1], "wide", "the models list names the net");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_works_by_keyboard_and_touch_chooses_a_shapes_picture_and_exports_say_what_they_hold(
) -> Result<()> {
    let Some(tools) = tools() else { return Ok(()) };
    let _one = ONE_BROWSER.lock().await;
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path());
    let ids = submit_doodles(&server.base, 6).await?;
    let browser = Browser::launch(&tools, Screen::Desktop).await?;
    set_up_admin(&browser, &server).await?;

    // Clicking the Review link, then j then f, flags the second newest drawing.
    browser.click(".admin-nav a[data-screen=review]").await?;
    browser.wait_for_screen("review").await;
    let shown: Vec<String> = serde_json::from_value(
        browser
            .js("return window.doodleboxAdmin.review.ids()")
            .await?,
    )?;
    browser.press("j").await?;
    browser.press("f").await?;
    wait_for_item(&server, &shown[1], "flag after j", |i| {
        i["is_flagged"] == true
    })
    .await?;

    // The select toggle (what a finger uses): tap two drawings, then a bulk action.
    browser.click("#select-mode").await?;
    browser
        .click("#review-grid .cell:nth-child(3) .thumb")
        .await?;
    browser
        .click("#review-grid .cell:nth-child(4) .thumb")
        .await?;
    let state = browser
        .js("return {open: document.getElementById('detail').open,
                     selection: document.getElementById('selection').textContent}")
        .await?;
    assert_eq!(
        state["open"], false,
        "a tap selects instead of opening: {state}"
    );
    assert!(
        state["selection"]
            .as_str()
            .is_some_and(|s| s.starts_with("2 selected")),
        "{state}"
    );
    browser.click("#bulk button[data-bulk=delete]").await?;
    for id in &shown[2..4] {
        wait_for_item(&server, id, "bulk delete", |i| !i["deleted_at"].is_null()).await?;
    }
    assert_eq!(ids.len(), 6);

    // Closing the detail view leaves the focus on the drawing it ended on.
    browser.click("#select-mode").await?;
    browser
        .click("#review-grid .cell:nth-child(1) .thumb")
        .await?;
    browser
        .wait_for(
            "the detail view",
            "return window.doodleboxAdmin.review.detail()",
            |v| v == &json!(shown[0]),
        )
        .await;
    browser.press("j").await?;
    browser
        .wait_for(
            "the next drawing",
            "return window.doodleboxAdmin.review.detail()",
            |v| v == &json!(shown[1]),
        )
        .await;
    browser.press("\u{E00C}").await?; // Escape
    browser
        .wait_for(
            "the focus on the current drawing",
            "return document.activeElement && document.activeElement.dataset.id",
            |v| v == &json!(shown[1]),
        )
        .await;

    // The detail view makes a drawing its shape's picture; the Shapes screen shows the
    // choice and goes back to the automatic picture.
    let chosen = review_item(&server, &shown[1]).await?;
    let shape = chosen["shape"].as_str().context("a shape")?.to_owned();
    browser.press("\u{E007}").await?; // Enter
    browser
        .wait_for(
            "the detail view again",
            "return window.doodleboxAdmin.review.detail()",
            |v| v == &json!(shown[1]),
        )
        .await;
    browser.click("#use-as-picture").await?;
    wait_for_shape(&server, &shape, "the chosen picture", |s| {
        s["picture"] == json!(shown[1])
    })
    .await?;
    browser.press("\u{E00C}").await?; // Escape
    browser.js("location.hash = '#/shapes'").await?;
    browser.wait_for_screen("shapes").await;
    let note = format!(
        "return [...document.querySelectorAll('#shape-list li')]
            .filter((li) => li.querySelector('h2').textContent.startsWith('{shape}'))
            .map((li) => li.querySelector('.picture-note').textContent)[0] || null"
    );
    browser
        .wait_for("the chosen picture on the Shapes screen", &note, |v| {
            v.as_str().is_some_and(|t| t.contains("a chosen drawing"))
        })
        .await;
    browser.wait_for_images().await;
    browser.screenshot("admin-shapes.png").await?;
    browser
        .click(&format!(
            "#shape-list li:has(img[src='/icons/{shape}.svg']) .reset-picture"
        ))
        .await?;
    wait_for_shape(&server, &shape, "the automatic picture", |s| {
        s["picture"].is_null()
    })
    .await?;

    // Exports: each download is named for what it holds; a refusal is shown on screen.
    browser.js("location.hash = '#/data'").await?;
    browser.wait_for_screen("data").await;
    let mut names = Vec::new();
    for format in ["quickdraw-raw", "quickdraw-simplified", "npy"] {
        browser
            .js("const s = document.getElementById('export-status'); delete s.dataset.file; s.textContent = '';")
            .await?;
        browser
            .click(&format!("#export-links a[data-format={format}]"))
            .await?;
        let name = browser
            .wait_for(
                "the export to be saved",
                "return document.getElementById('export-status').dataset.file || null",
                |v| v.is_string(),
            )
            .await;
        names.push(name.as_str().unwrap_or_default().to_owned());
    }
    assert!(
        names[0].starts_with("doodlebox-all-unflagged-raw-") && names[0].ends_with(".ndjson"),
        "{names:?}"
    );
    assert!(
        names[1].starts_with("doodlebox-all-unflagged-simplified-"),
        "{names:?}"
    );
    assert!(
        names[2].ends_with(".npz"),
        "every shape's bitmaps as one archive: {names:?}"
    );
    // The check of the stores runs as a job; its report replaces the progress on screen.
    browser.click("#verify-stores").await?;
    let verdict = browser
        .wait_for(
            "the check of the stores to report",
            "const t = document.getElementById('verify-report').textContent; return t.includes('whole') || t.includes('problems') ? t : null",
            |v| v.is_string(),
        )
        .await;
    assert!(
        verdict
            .as_str()
            .is_some_and(|t| t.starts_with("The stores are whole")),
        "{verdict}"
    );
    browser.screenshot("admin-data.png").await?;
    // With the server gone, an export says so on screen instead of saving nothing.
    drop(server);
    browser
        .click("#export-links a[data-format=quickdraw-raw]")
        .await?;
    browser
        .wait_for(
            "the export failure on screen",
            "return document.getElementById('export-status').textContent",
            |v| v.as_str().is_some_and(|t| t.starts_with("Export failed")),
        )
        .await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_game_and_the_portal_never_scroll_sideways_on_a_360_px_phone() -> Result<()> {
    let Some(tools) = tools() else { return Ok(()) };
    let _one = ONE_BROWSER.lock().await;
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path());
    submit_doodles(&server.base, 4).await?;
    let browser = Browser::launch(&tools, Screen::SmallPhone).await?;
    let fits = "return {scroll: document.documentElement.scrollWidth, width: window.innerWidth}";
    let check = |v: &Value, what: &str| {
        assert!(
            v["scroll"].as_u64().unwrap_or(u64::MAX) <= v["width"].as_u64().unwrap_or(0),
            "{what} scrolls sideways at 360 px: {v}"
        );
    };
    browser.goto(&format!("{}/", server.base)).await?;
    browser.wait_until_ready().await;
    check(&browser.js(fits).await?, "the game");
    browser.screenshot("game-phone-360.png").await?;
    set_up_admin(&browser, &server).await?;
    for screen in [
        "dashboard",
        "review",
        "players",
        "shapes",
        "training",
        "models",
        "data",
        "keys",
    ] {
        browser.js(&format!("location.hash = '#/{screen}'")).await?;
        browser.wait_for_screen(screen).await;
        check(&browser.js(fits).await?, screen);
        // Every nav link is on screen: none cut off.
        let cut = browser
            .js("return [...document.querySelectorAll('.admin-nav a')].filter((a) => a.getBoundingClientRect().right > window.innerWidth).map((a) => a.textContent)")
            .await?;
        assert_eq!(cut, json!([]), "nav links cut off on {screen}");
    }
    browser.js("location.hash = '#/dashboard'").await?;
    browser.wait_for_screen("dashboard").await;
    browser.screenshot("admin-dashboard-phone-360.png").await?;
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

// --- tablets and touch (issue #15) -------------------------------------------------------------

/// Which way up the tablet is held.
#[derive(Clone, Copy, Debug)]
enum Orientation {
    Portrait,
    Landscape,
}

impl Orientation {
    /// The viewport (CSS px) held this way.
    fn size(self) -> (u32, u32) {
        match self {
            Orientation::Portrait => TABLET,
            Orientation::Landscape => (TABLET.1, TABLET.0),
        }
    }

    /// How screenshots name it.
    fn name(self) -> &'static str {
        match self {
            Orientation::Portrait => "portrait",
            Orientation::Landscape => "landscape",
        }
    }
}

/// Measures the page as a finger meets it, scrolled to the top: how wide it is against the
/// viewport, every visible control smaller than 44x44 CSS px (a checkbox counts by its
/// label, which takes its taps), the `reach` elements not wholly on screen, and the `boxes`
/// (page regions: bars, nav, board) that overlap one another.
fn finger_check(reach: &str, boxes: &[&str]) -> String {
    let boxes = serde_json::to_string(boxes).unwrap_or_default();
    format!(
        "window.scrollTo(0, 0);
         const vw = window.innerWidth, vh = window.innerHeight;
         const name = (el) => `${{el.tagName.toLowerCase()}}${{el.id ? '#' + el.id : ''}} \"${{(el.textContent || el.value || el.getAttribute('aria-label') || '').trim().slice(0, 30)}}\"`;
         const small = [];
         for (const el of document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea, summary, [role=button]')) {{
           const box = el.getBoundingClientRect();
           if (box.width === 0 || box.height === 0 || getComputedStyle(el).visibility === 'hidden') continue;
           if (el.closest('dialog:not([open])')) continue;
           const label = (el.type === 'checkbox' || el.type === 'radio') && el.closest('label');
           const r = (label || el).getBoundingClientRect();
           if (r.right <= 0) continue; // parked off screen until focused: the skip link
           if (r.width < 44 || r.height < 44) small.push(`${{name(el)}} ${{Math.round(r.width)}}x${{Math.round(r.height)}}`);
         }}
         const unreachable = [...document.querySelectorAll('{reach}')].filter((el) => {{
           const r = el.getBoundingClientRect();
           return r.left < 0 || r.top < 0 || r.right > vw + 0.5 || r.bottom > vh + 0.5;
         }}).map(name);
         const regions = {boxes}.map((css) => [css, document.querySelector(css)]).filter(([, el]) => el)
           .map(([css, el]) => [css, el.getBoundingClientRect()]);
         const overlaps = [];
         for (let i = 0; i < regions.length; i++) for (let j = i + 1; j < regions.length; j++) {{
           const [a, ra] = regions[i], [b, rb] = regions[j];
           const x = Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left);
           const y = Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top);
           if (x > 0.5 && y > 0.5) overlaps.push(`${{a}} and ${{b}}`);
         }}
         return {{scroll: document.documentElement.scrollWidth, width: vw, height: vh, small, unreachable, overlaps}};"
    )
}

/// Fails unless `measured` (from [`finger_check`]) is a page that fits the tablet held
/// `orientation`, with every control big enough and in reach.
fn assert_fits_a_finger(measured: &Value, what: &str, orientation: Orientation) {
    let (w, h) = orientation.size();
    let o = orientation.name();
    assert_eq!(
        (measured["width"].as_u64(), measured["height"].as_u64()),
        (Some(u64::from(w)), Some(u64::from(h))),
        "{what}: the viewport is not a {o} tablet: {measured}"
    );
    assert!(
        measured["scroll"].as_u64().unwrap_or(u64::MAX) <= u64::from(w),
        "{what} scrolls sideways on a {o} tablet: {measured}"
    );
    for (key, problem) in [
        ("small", "controls under 44 px"),
        ("unreachable", "controls off screen"),
        ("overlaps", "regions overlap"),
    ] {
        assert_eq!(
            measured[key],
            json!([]),
            "{what} on a {o} tablet: {problem}"
        );
    }
}

impl Browser {
    /// One Chrome DevTools Protocol command, through chromedriver.
    async fn cdp(&self, cmd: &str, params: Value) -> Result<Value> {
        self.session_command(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            Some(json!({"cmd": cmd, "params": params})),
        )
        .await
        .with_context(|| format!("CDP {cmd}"))
    }

    /// Turns the tablet: the viewport and the screen's orientation change as a real turn
    /// changes them, and the page lays itself out again.
    async fn rotate(&self, orientation: Orientation) -> Result<()> {
        let (width, height) = orientation.size();
        let (kind, angle) = match orientation {
            Orientation::Portrait => ("portraitPrimary", 0),
            Orientation::Landscape => ("landscapePrimary", 90),
        };
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 2.0, "mobile": true,
                   "screenOrientation": {"type": kind, "angle": angle}}),
        )
        .await?;
        Ok(())
    }

    /// Makes CDP touch events reach the page as a touch screen's would.
    async fn enable_touch(&self) -> Result<()> {
        self.cdp(
            "Emulation.setTouchEmulationEnabled",
            json!({"enabled": true, "maxTouchPoints": 5}),
        )
        .await?;
        Ok(())
    }

    /// One finger event at viewport point `at` (CSS px, fractions kept); `None` lifts it.
    async fn finger(&self, kind: &str, at: Option<(f64, f64)>) -> Result<()> {
        let points = match at {
            Some((x, y)) => json!([{"x": x, "y": y, "id": 1, "radiusX": 1, "radiusY": 1}]),
            None => json!([]),
        };
        self.cdp(
            "Input.dispatchTouchEvent",
            json!({"type": kind, "touchPoints": points}),
        )
        .await?;
        Ok(())
    }

    /// The middle of the element `css` in the viewport, scrolled into view first.
    async fn middle_of(&self, css: &str) -> Result<(f64, f64)> {
        let css_json = serde_json::to_string(css)?;
        let at = self
            .js(&format!(
                "const el = document.querySelector({css_json});
                 if (!el) return null;
                 el.scrollIntoView({{block: 'center', inline: 'center'}});
                 const r = el.getBoundingClientRect();
                 return [r.left + r.width / 2, r.top + r.height / 2];"
            ))
            .await?;
        let get = |i: usize| {
            at[i]
                .as_f64()
                .with_context(|| format!("no {css} on the page"))
        };
        Ok((get(0)?, get(1)?))
    }

    /// A finger taps the middle of `css` and lifts at once.
    async fn tap(&self, css: &str) -> Result<()> {
        let at = self.middle_of(css).await?;
        self.finger("touchStart", Some(at)).await?;
        self.finger("touchEnd", None).await
    }

    /// A finger rests on the middle of `css` for [`LONG_PRESS`], then lifts.
    async fn long_press(&self, css: &str) -> Result<()> {
        let at = self.middle_of(css).await?;
        self.finger("touchStart", Some(at)).await?;
        // Not waiting for a server: the finger's rest is the gesture.
        tokio::time::sleep(LONG_PRESS).await;
        self.finger("touchEnd", None).await
    }

    /// A finger starts on `css` and drags 120 px up, as a hand scrolling a list does, then
    /// rests there past the long-press time before lifting.
    async fn swipe_up_from(&self, css: &str) -> Result<()> {
        let (x, y) = self.middle_of(css).await?;
        self.finger("touchStart", Some((x, y))).await?;
        for step in 1..=8 {
            // About a frame apart, as a hand moves.
            tokio::time::sleep(Duration::from_millis(16)).await;
            self.finger("touchMove", Some((x, y - 15.0 * f64::from(step))))
                .await?;
        }
        tokio::time::sleep(LONG_PRESS).await;
        self.finger("touchEnd", None).await
    }

    /// Draws one stroke through `path` (canvas coordinates) on the game's board with a
    /// finger, through CDP touch events, and returns it as the board saw it.
    async fn finger_draw(&self, path: &[(f64, f64)]) -> Result<Drawn> {
        let board = self.board().await?;
        let at = |&(x, y): &(f64, f64)| (board.left + x, board.top + y);
        self.finger("touchStart", Some(at(&path[0]))).await?;
        for point in &path[1..] {
            tokio::time::sleep(Duration::from_millis(16)).await;
            self.finger("touchMove", Some(at(point))).await?;
        }
        // Rest before lifting: a finger lifted while moving starts a fling.
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.finger("touchEnd", None).await?;
        Ok(Drawn {
            path: path.to_vec(),
            canvas: (board.width, board.height),
        })
    }

    /// The review screen's selection line, select toggle and dialog, for assertions.
    async fn review_state(&self) -> Result<Value> {
        self.js(
            "return {selection: document.getElementById('selection').textContent,
                     selecting: document.getElementById('select-mode').getAttribute('aria-pressed'),
                     selected: [...document.querySelectorAll('#review-grid .cell.is-selected .thumb')].map((b) => b.dataset.id),
                     open: document.getElementById('detail').open}",
        )
        .await
    }
}

/// Every admin screen, in nav order.
const ADMIN_SCREENS: [&str; 8] = [
    "dashboard",
    "review",
    "players",
    "shapes",
    "training",
    "models",
    "data",
    "keys",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_tablet_either_way_up_nothing_scrolls_sideways_overlaps_or_is_too_small_to_tap(
) -> Result<()> {
    let Some(tools) = tools() else { return Ok(()) };
    let _one = ONE_BROWSER.lock().await;
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path());
    submit_doodles(&server.base, 6).await?;
    let browser = Browser::launch(&tools, Screen::Tablet).await?;

    // The game: the board fills the screen, and it and every control are in reach.
    let game = finger_check(
        "#board-wrap, .controls button, .name > summary",
        &[".topbar", ".prompt", "#clock", "#board-wrap", ".controls"],
    );
    for orientation in [Orientation::Portrait, Orientation::Landscape] {
        // chromedriver sets its emulated device again on every page load: turn after it.
        browser.goto(&format!("{}/", server.base)).await?;
        browser.wait_until_ready().await;
        browser.rotate(orientation).await?;
        assert_fits_a_finger(&browser.js(&game).await?, "the game", orientation);
        let board = browser.board().await?;
        let (w, h) = orientation.size();
        let shorter = f64::from(w.min(h));
        assert!(
            board.width >= 0.7 * shorter && board.height >= 0.7 * shorter,
            "the board ({}x{}) does not fill a {} tablet",
            board.width,
            board.height,
            orientation.name()
        );
        browser
            .screenshot(&format!("game-tablet-{}.png", orientation.name()))
            .await?;
    }

    // The portal: every screen, both ways up; the review screen with its bulk bar showing
    // and with the detail view open.
    set_up_admin(&browser, &server).await?;
    let portal = finger_check(
        ".admin-nav a, #logout",
        &[".admin-bar", ".admin-nav", "#view"],
    );
    for orientation in [Orientation::Portrait, Orientation::Landscape] {
        browser.rotate(orientation).await?;
        let o = orientation.name();
        for screen in ADMIN_SCREENS {
            browser.js(&format!("location.hash = '#/{screen}'")).await?;
            browser.wait_for_screen(screen).await;
            assert_fits_a_finger(&browser.js(&portal).await?, screen, orientation);
            if screen == "dashboard" {
                browser.wait_for_images().await;
                browser
                    .screenshot(&format!("admin-dashboard-tablet-{o}.png"))
                    .await?;
            }
            if screen != "review" {
                continue;
            }
            browser.click("#select-mode").await?;
            browser
                .click("#review-grid .cell:nth-child(2) .thumb")
                .await?;
            let state = browser.review_state().await?;
            assert_eq!(
                state["selected"].as_array().map(Vec::len),
                Some(1),
                "{state}"
            );
            assert_fits_a_finger(&browser.js(&portal).await?, "the bulk bar", orientation);
            browser.wait_for_images().await;
            browser
                .screenshot(&format!("admin-review-tablet-{o}.png"))
                .await?;
            browser.click("#select-mode").await?;
            browser
                .click("#review-grid .cell:nth-child(1) .thumb")
                .await?;
            browser
                .wait_for(
                    "the detail view",
                    "return document.getElementById('detail').open",
                    |v| v == true,
                )
                .await;
            // The replay beside the facts: every button of the dialog in reach at once.
            let detail = finger_check("#detail button", &[]);
            assert_fits_a_finger(&browser.js(&detail).await?, "the detail view", orientation);
            browser.press("\u{E00C}").await?; // Escape
            browser
                .wait_for(
                    "the detail view to close",
                    "return document.getElementById('detail').open",
                    |v| v == false,
                )
                .await;
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_tablet_a_finger_draws_and_a_long_press_but_not_a_scroll_starts_a_selection(
) -> Result<()> {
    let Some(tools) = tools() else { return Ok(()) };
    let _one = ONE_BROWSER.lock().await;
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path());
    let browser = Browser::launch(&tools, Screen::Tablet).await?;
    browser.enable_touch().await?;

    // A finger draws on the game's board; the stored points follow its path.
    browser.goto(&format!("{}/", server.base)).await?;
    browser.wait_until_ready().await;
    let path = loop_path(&browser).await?;
    let started = millis_since_epoch();
    let drawn = browser.finger_draw(&path).await?;
    let ended = millis_since_epoch();
    browser.tap("#submit").await?;
    let ids = wait_until_saved(&browser, 1).await;
    let cookie = browser.player_cookie().await?;
    let drawing = fetch_drawing(&server.base, &cookie, &ids[0]).await;
    check_drawing(&drawing, "touch", &drawn, started, ended);

    submit_doodles(&server.base, 6).await?;
    set_up_admin(&browser, &server).await?;
    browser.tap(".admin-nav a[data-screen=review]").await?;
    browser.wait_for_screen("review").await;
    let shown: Vec<String> = serde_json::from_value(
        browser
            .js("return window.doodleboxAdmin.review.ids()")
            .await?,
    )?;
    assert_eq!(shown.len(), 7, "{shown:?}");

    // A finger that scrolls, however long it stays down, selects nothing and opens nothing.
    browser
        .swipe_up_from("#review-grid .cell:nth-child(2) .thumb")
        .await?;
    let state = browser.review_state().await?;
    assert_eq!(state["selected"], json!([]), "a scroll selected: {state}");
    assert_eq!(state["selecting"], "false", "{state}");
    assert_eq!(state["open"], false, "{state}");

    // A long press selects the drawing and turns selection on, without opening it.
    browser
        .long_press("#review-grid .cell:nth-child(3) .thumb")
        .await?;
    let state = browser
        .wait_for(
            "the long press to select",
            "return document.getElementById('select-mode').getAttribute('aria-pressed')",
            |v| v == "true",
        )
        .await;
    assert_eq!(state, "true");
    let state = browser.review_state().await?;
    assert_eq!(state["selected"], json!([shown[2]]), "{state}");
    assert_eq!(state["open"], false, "a long press does not open: {state}");
    assert!(
        state["selection"]
            .as_str()
            .is_some_and(|s| s.starts_with("1 selected")),
        "{state}"
    );

    // Then taps add to the selection, and a tap on the bulk bar acts on all of it.
    browser
        .tap("#review-grid .cell:nth-child(5) .thumb")
        .await?;
    let state = browser.review_state().await?;
    assert_eq!(state["selected"], json!([shown[2], shown[4]]), "{state}");
    browser.tap("#bulk button[data-bulk=flag]").await?;
    for id in [&shown[2], &shown[4]] {
        wait_for_item(&server, id, "bulk flag", |i| i["is_flagged"] == true).await?;
    }
    for id in [&shown[1], &shown[3]] {
        let item = review_item(&server, id).await?;
        assert_eq!(item["is_flagged"], false, "only the selection: {item}");
    }

    // With selection off, a plain tap opens the drawing, as before.
    browser.tap("#select-mode").await?;
    browser
        .tap("#review-grid .cell:nth-child(1) .thumb")
        .await?;
    browser
        .wait_for(
            "the detail view",
            "return window.doodleboxAdmin.review.detail()",
            |v| v == &json!(shown[0]),
        )
        .await;
    Ok(())
}
