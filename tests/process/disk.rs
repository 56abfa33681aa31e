//! A nearly full disk and failing writes: 507 and the storage breaker's 503, then recovery
//! without a restart.

use super::*;

/// A small tmpfs mounted on a temporary directory, unmounted when dropped; `None` (with a
/// printed reason) where this machine does not let the test mount one.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::piped())
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(Tmpfs { dir }),
            Ok(out) => {
                println!(
                    "skipped: cannot mount a tmpfs here ({})",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(e) => {
                println!("skipped: cannot run mount ({e})");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the file system with a ballast file until `leave` bytes are free.
    fn fill_leaving(&self, leave: u64) {
        let free = fs4::available_space(self.path()).unwrap();
        let ballast = self.path().join("ballast");
        let size = std::fs::metadata(&ballast).map(|m| m.len()).unwrap_or(0) + free - leave;
        let status = Command::new("fallocate")
            .args(["-l", &size.to_string()])
            .arg(&ballast)
            .status()
            .expect("fallocate runs");
        assert!(status.success(), "fallocate failed");
    }

    fn remove_ballast(&self) {
        std::fs::remove_file(self.path().join("ballast")).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Submits one drawing as `cookie`'s player: status, Retry-After, JSON body.
async fn post_drawing(
    client: &reqwest::Client,
    base: &str,
    cookie: &str,
    body: &Value,
) -> (u16, Option<String>, Value) {
    let response = client
        .post(format!("{base}/api/v1/drawings"))
        .header("cookie", cookie)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry_after, response.json().await.unwrap())
}

fn median_ms(mut times: Vec<Duration>) -> f64 {
    times.sort();
    times[times.len() / 2].as_secs_f64() * 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_nearly_full_disk_refuses_drawings_with_507_keeps_reads_working_and_recovers_without_restart(
) {
    let Some(disk) = Tmpfs::mount("64m") else {
        return;
    };
    let data = disk.path().join("data");
    let env = [("DOODLEBOX_MIN_FREE_MB", "16")];
    let server = start_server_with(&data, &env).await;
    let client = reqwest::Client::new();
    let cookie = format!("doodlebox_player={:032x}", rand::random::<u128>());
    let mut acked = Vec::new();
    let mut rng = rand::rng();
    for _ in 0..20 {
        let body = random_drawing(&mut rng);
        let (status, _, reply) = post_drawing(&client, &server.base, &cookie, &body).await;
        assert_eq!(status, 201, "{reply}");
        let id = reply["id"].as_str().unwrap().to_owned();
        acked.push(Acked {
            cookie: cookie.clone(),
            id,
            body,
        });
    }

    // Below the 16 MiB watermark: submissions turn to 507 as soon as the watch sees it.
    disk.fill_leaving(10 << 20);
    let refusal = loop {
        let body = random_drawing(&mut rng);
        let (status, _, reply) = post_drawing(&client, &server.base, &cookie, &body).await;
        match status {
            201 => acked.push(Acked {
                cookie: cookie.clone(),
                id: reply["id"].as_str().unwrap().to_owned(),
                body,
            }),
            507 => break reply,
            other => panic!("unexpected {other}: {reply}"),
        }
    };
    assert_eq!(refusal["error"]["code"], "insufficient_storage");
    let message = refusal["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("MiB free") && message.contains("16.0 MiB watermark"),
        "{message}"
    );
    let mut refused_in = Vec::new();
    for _ in 0..20 {
        let started = std::time::Instant::now();
        let (status, _, _) =
            post_drawing(&client, &server.base, &cookie, &random_drawing(&mut rng)).await;
        refused_in.push(started.elapsed());
        assert_eq!(status, 507);
    }
    let ready = readyz(&server.base).await;
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["disk"]["state"], "low", "{ready}");
    assert_eq!(ready["disk"]["watermark_bytes"], 16 << 20, "{ready}");
    assert_eq!(ready["drawings"], acked.len(), "{ready}");
    // Reads, classify and admin GETs still answer.
    let shapes = client
        .get(format!("{}/api/v1/shapes", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(shapes.status(), 200);
    let models = server
        .admin()
        .get(format!("{}/api/v1/admin/models", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(models.status(), 200);
    let classify = client
        .post(format!("{}/api/v1/classify", server.base))
        .header("cookie", &cookie)
        .json(&random_drawing(&mut rng))
        .send()
        .await
        .unwrap();
    // No model was trained here: the classifier itself answers, not the disk.
    let classified: Value = classify.json().await.unwrap();
    assert_eq!(
        classified["error"]["code"], "no_active_model",
        "{classified}"
    );
    let metrics = client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("doodlebox_disk_low 1"), "{metrics}");
    assert!(
        metrics.contains("doodlebox_disk_watermark_bytes 16777216"),
        "{metrics}"
    );
    assert_eq!(
        missing_or_changed(&server.base, &acked).await,
        Vec::<String>::new()
    );

    // Space returns: writes resume by themselves.
    disk.remove_ballast();
    let freed_at = std::time::Instant::now();
    loop {
        let body = random_drawing(&mut rng);
        let (status, _, reply) = post_drawing(&client, &server.base, &cookie, &body).await;
        if status == 201 {
            acked.push(Acked {
                cookie: cookie.clone(),
                id: reply["id"].as_str().unwrap().to_owned(),
                body,
            });
            break;
        }
        assert_eq!(status, 507, "{reply}");
        assert!(
            freed_at.elapsed() < Duration::from_secs(30),
            "writes never resumed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let resumed_after = freed_at.elapsed();
    assert_eq!(readyz(&server.base).await["disk"]["state"], "ok");
    // The sampler writes the emergency reserve back once there is room for it.
    let reserve = data.join("reserve.bin");
    while !reserve.exists() {
        assert!(freed_at.elapsed() < Duration::from_secs(30), "no reserve");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A restart on a completely full disk comes up degraded instead of failing.
    server.kill_9();
    disk.fill_leaving(0);
    let server = start_server_with(&data, &env).await;
    let ready = readyz(&server.base).await;
    assert_eq!(ready["disk"]["state"], "low", "{ready}");
    assert_eq!(ready["drawings"], acked.len(), "{ready}");
    let (status, _, reply) =
        post_drawing(&client, &server.base, &cookie, &random_drawing(&mut rng)).await;
    assert_eq!(status, 507, "{reply}");
    assert_eq!(
        missing_or_changed(&server.base, &acked).await,
        Vec::<String>::new()
    );
    let mut server = server;
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the degraded server keeps running"
    );
    println!(
        "disk full: {} acknowledged, refused submit median {:.2} ms, writes resumed {} ms after the ballast was removed, restart on a 100 % full disk came up degraded",
        acked.len(),
        median_ms(refused_in),
        resumed_after.as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repeated_write_failures_open_the_breaker_which_answers_503_with_retry_after_and_recovers()
{
    let dir = tempfile::tempdir().unwrap();
    // Three failed commits open the breaker; the first probe fails too, the second succeeds.
    let server = start_server_with(dir.path(), &[("DOODLEBOX_FAIL_WRITES", "4")]).await;
    let client = reqwest::Client::new();
    let cookie = format!("doodlebox_player={:032x}", rand::random::<u128>());
    let mut rng = rand::rng();
    for _ in 0..3 {
        let (status, _, reply) =
            post_drawing(&client, &server.base, &cookie, &random_drawing(&mut rng)).await;
        assert_eq!(
            status, 503,
            "a failed commit is never acknowledged: {reply}"
        );
        assert_eq!(reply["error"]["code"], "storage_unavailable");
    }
    let started = std::time::Instant::now();
    let (status, retry_after, reply) =
        post_drawing(&client, &server.base, &cookie, &random_drawing(&mut rng)).await;
    let refused_in = started.elapsed();
    assert_eq!(status, 503, "{reply}");
    assert_eq!(reply["error"]["code"], "storage_unavailable");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("writes are paused"),
        "{reply}"
    );
    assert_eq!(retry_after.as_deref(), Some("1"));
    let ready = readyz(&server.base).await;
    assert_eq!(ready["storage_breaker"]["state"], "open", "{ready}");
    assert_eq!(ready["status"], "degraded", "{ready}");

    let mut acked = Vec::new();
    let mut refusals = vec![refused_in];
    while acked.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never recovered"
        );
        let body = random_drawing(&mut rng);
        let sent = std::time::Instant::now();
        let (status, retry_after, reply) =
            post_drawing(&client, &server.base, &cookie, &body).await;
        match status {
            201 => acked.push(Acked {
                cookie: cookie.clone(),
                id: reply["id"].as_str().unwrap().to_owned(),
                body,
            }),
            503 => {
                assert!(retry_after.is_some(), "{reply}");
                refusals.push(sent.elapsed());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => panic!("unexpected {other}: {reply}"),
        }
    }
    let recovered_in = started.elapsed();
    let ready = readyz(&server.base).await;
    assert_eq!(ready["storage_breaker"]["state"], "closed", "{ready}");
    assert_eq!(ready["storage_breaker"]["times_opened"], 2, "{ready}");
    // The failed batches left nothing behind: only the acknowledged drawing is stored.
    assert_eq!(ready["drawings"], 1, "{ready}");
    assert_eq!(
        missing_or_changed(&server.base, &acked).await,
        Vec::<String>::new()
    );
    let metrics = client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"doodlebox_circuit_breaker_state{breaker="storage",state="closed"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"doodlebox_circuit_breaker_opened_total{breaker="storage"} 2"#),
        "{metrics}"
    );
    drop(server);
    // Restarting finds nothing to repair: the failed batches' records were taken back.
    let server = start_server(dir.path()).await;
    let ready = readyz(&server.base).await;
    assert_eq!(ready["reconciled_at_start"]["rebuilt"], 0, "{ready}");
    assert_eq!(ready["drawings"], 1, "{ready}");
    println!(
        "breaker: {} refusals while open or probing, median {:.2} ms; first write acknowledged {} ms after the breaker opened",
        refusals.len(),
        median_ms(refusals),
        recovered_in.as_millis()
    );
}
