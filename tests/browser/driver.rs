//! The WebDriver client: Chromium and chromedriver found, launched and spoken to over
//! `reqwest` (the few W3C endpoints and Chrome DevTools commands these tests use).

use super::*;

// --- the browser -----------------------------------------------------------------------------

/// The browser binaries, or the reason the tests cannot run here.
pub(crate) struct Tools {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

/// Finds Chromium and chromedriver. `None` means skip; under `CI` a missing browser fails.
pub(crate) fn tools() -> Option<Tools> {
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
pub(crate) enum Screen {
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
pub(crate) struct Browser {
    driver: Child,
    port: u16,
    session: String,
    http: reqwest::Client,
    /// Chromium's profile, fresh for every browser; removed after chromedriver is gone.
    _profile: tempfile::TempDir,
}

impl Browser {
    pub(crate) async fn launch(tools: &Tools, screen: Screen) -> Result<Browser> {
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
    pub(crate) async fn command(
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

    pub(crate) async fn session_command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let path = format!("/session/{}{path}", self.session);
        self.command(method, &path, body).await
    }

    pub(crate) async fn goto(&self, url: &str) -> Result<()> {
        self.session_command(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await?;
        Ok(())
    }

    pub(crate) async fn refresh(&self) -> Result<()> {
        self.session_command(reqwest::Method::POST, "/refresh", Some(json!({})))
            .await?;
        Ok(())
    }

    /// Runs `script` as a function body; a returned promise is awaited by the driver.
    pub(crate) async fn js(&self, script: &str) -> Result<Value> {
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
    pub(crate) async fn wait_for(
        &self,
        what: &str,
        script: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
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

    pub(crate) async fn wait_until_ready(&self) {
        self.wait_for(
            "the game to be ready",
            "return window.doodlebox ? window.doodlebox.state() : 'no hook'",
            |v| v == "ready",
        )
        .await;
    }

    pub(crate) async fn click(&self, css: &str) -> Result<()> {
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
    pub(crate) async fn draw(&self, kind: &str, path: &[(f64, f64)]) -> Result<Drawn> {
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
    pub(crate) async fn board(&self) -> Result<Board> {
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
    pub(crate) async fn player_cookie(&self) -> Result<String> {
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
pub(crate) struct Board {
    pub(crate) left: f64,
    pub(crate) top: f64,
    pub(crate) width: f64,
    pub(crate) height: f64,
    /// How much of it is inside the viewport, from its top-left corner.
    pub(crate) visible_width: f64,
    pub(crate) visible_height: f64,
}

/// A stroke as the board saw it.
pub(crate) struct Drawn {
    /// The pointer's positions in canvas coordinates.
    pub(crate) path: Vec<(f64, f64)>,
    /// The board's size while it was drawn.
    pub(crate) canvas: (f64, f64),
}
