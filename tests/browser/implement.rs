//! The implementor page: the model card, guesses of a drawn loop, examples on its own origin.

use super::*;

// --- the implementor page --------------------------------------------------------------------

/// Trains a one-epoch model on synthetic doodles through the admin API (with the control
/// token) and activates it; returns its version.
pub(crate) async fn train_and_activate(server: &Server) -> Result<String> {
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
