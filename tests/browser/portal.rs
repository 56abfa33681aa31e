//! The portal at work: the live feed, a training job from the form, the shapes a job could
//! not learn, review by touch and exports, and no sideways scrolling on a phone.

use super::*;

// --- the live portal (issue #15) ---------------------------------------------------------------

/// Signs in the first admin through the setup page; lands on the dashboard.
pub(crate) async fn set_up_admin(browser: &Browser, server: &Server) -> Result<()> {
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

/// What `script` finds in the job view once it finds a non-empty text. Training is not a wait
/// on the page: it gets minutes, not `WAIT`; on time-out the error quotes the job's status.
async fn job_view_text(browser: &Browser, script: &str, what: &str) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let found = browser.js(script).await?;
        if let Some(text) = found.as_str().filter(|t| !t.is_empty()) {
            return Ok(text.to_owned());
        }
        ensure!(
            Instant::now() < deadline,
            "the job view never {what}: {}",
            browser
                .js("return document.getElementById('job-status').textContent")
                .await?
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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
    let version = job_view_text(
        &browser,
        "const a = document.querySelector('#job-model a'); return a ? a.textContent : null",
        "linked a model",
    )
    .await?;
    // The job view says what the run trains, as the model's manifest records it.
    let training = browser
        .js("return document.getElementById('job-training').textContent")
        .await?;
    let training = training.as_str().unwrap_or_default();
    assert!(
        training.starts_with("Trains: wide net · 1 epoch of batch 64"),
        "{training}"
    );
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
async fn the_job_view_names_the_shapes_a_model_did_not_learn_because_the_split_held_them_out(
) -> Result<()> {
    let Some(tools) = tools() else { return Ok(()) };
    let _one = ONE_BROWSER.lock().await;
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path());
    let client = reqwest::Client::new();
    synthetic::submit_triangles_only_held_out(&client, &server.base).await;
    let created: Value = client
        .post(format!("{}/api/v1/admin/training-jobs", server.base))
        .bearer_auth(&server.token)
        .json(&json!({"epochs": 1, "seed": 3, "batch_size": 16, "max_steps_per_epoch": 1}))
        .send()
        .await?
        .json()
        .await?;
    let id = created["job"]["id"].as_i64().context("a job id")?;
    let browser = Browser::launch(&tools, Screen::Desktop).await?;
    set_up_admin(&browser, &server).await?;
    browser
        .js(&format!("location.hash = '#/training?job={id}'"))
        .await?;
    browser.wait_for_screen("training").await;
    let note = job_view_text(
        &browser,
        "const p = document.getElementById('job-unlearned'); return p ? p.textContent : null",
        "named the unlearned shape",
    )
    .await?;
    assert!(
        note.starts_with("Not learned: triangle. Every drawing of this shape is held out"),
        "{note}"
    );
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
