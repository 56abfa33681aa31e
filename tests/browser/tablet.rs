//! Tablets and touch: both orientations fit a finger, a finger draws, a long press selects.

use super::*;

// --- tablets and touch (issue #15) -------------------------------------------------------------

/// Which way up the tablet is held.
#[derive(Clone, Copy, Debug)]
enum Orientation {
    Portrait,
    Landscape,
}

impl Orientation {
    /// The viewport (CSS px) held this way.
    pub(crate) fn size(self) -> (u32, u32) {
        match self {
            Orientation::Portrait => TABLET,
            Orientation::Landscape => (TABLET.1, TABLET.0),
        }
    }

    /// How screenshots name it.
    pub(crate) fn name(self) -> &'static str {
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
    pub(crate) async fn finger(&self, kind: &str, at: Option<(f64, f64)>) -> Result<()> {
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
    /// Waits up to [`WAIT`] for the element: a live event may be re-rendering its list (the
    /// review grid after a bulk action) at the moment the finger comes down.
    async fn middle_of(&self, css: &str) -> Result<(f64, f64)> {
        let css_json = serde_json::to_string(css)?;
        let deadline = Instant::now() + WAIT;
        let at = loop {
            let at = self
                .js(&format!(
                    "const el = document.querySelector({css_json});
                     if (!el) return null;
                     el.scrollIntoView({{block: 'center', inline: 'center'}});
                     const r = el.getBoundingClientRect();
                     return [r.left + r.width / 2, r.top + r.height / 2];"
                ))
                .await?;
            if !at.is_null() || Instant::now() >= deadline {
                break at;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let get = |i: usize| {
            at[i]
                .as_f64()
                .with_context(|| format!("no {css} on the page"))
        };
        Ok((get(0)?, get(1)?))
    }

    /// A finger taps the middle of `css` and lifts at once.
    pub(crate) async fn tap(&self, css: &str) -> Result<()> {
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
