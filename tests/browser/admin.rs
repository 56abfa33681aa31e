//! The admin portal: first sign-in by the setup link, review by keyboard, the sign-in page.

use super::*;

// --- the admin portal ------------------------------------------------------------------------

/// WebDriver's key value for Enter.
const ENTER: &str = "\u{E007}";
/// The first admin's password in these tests (the setup page asks for 10 characters).
pub(crate) const ADMIN_PASSWORD: &str = "correct horse battery";

impl Server {
    /// The setup link the server printed (a fresh data directory has no admin yet).
    pub(crate) fn setup_link(&self) -> Result<String> {
        self.printed("admin setup: ")
            .map(|link| link.trim().to_owned())
            .context("the server printed no `admin setup: ` line")
    }
}

impl Browser {
    /// Presses and releases one key in the focused element.
    pub(crate) async fn press(&self, key: &str) -> Result<()> {
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
    pub(crate) async fn screenshot(&self, name: &str) -> Result<()> {
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
    pub(crate) async fn wait_for_screen(&self, screen: &str) {
        self.wait_for(
            &format!("the {screen} screen"),
            "return window.doodleboxAdmin ? window.doodleboxAdmin.ready() : null",
            |v| v == screen,
        )
        .await;
    }

    /// Waits until every `<img>` on the page has loaded (for screenshots).
    pub(crate) async fn wait_for_images(&self) {
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
pub(crate) async fn submit_doodles(base: &str, n: usize) -> Result<Vec<String>> {
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
pub(crate) async fn review_item(server: &Server, id: &str) -> Result<Value> {
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
pub(crate) async fn wait_for_item(
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
pub(crate) async fn wait_for_shape(
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
