//! An online backup taken while clients submit restores every drawing acknowledged before it.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_while_20_clients_submit_restores_every_drawing_acknowledged_before_it() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let dest = root.path().join("backup");
    let restored = root.path().join("restored");
    let server = start_server(&data).await;
    // A model, so that the backup has model files to carry.
    synthetic::submit_doodles(&server.base, 10, &[]).await;
    let job = server
        .queue_training(&json!({"epochs": 1, "batch_size": 8}))
        .await;
    wait_for_job(
        &server.admin(),
        &server.base,
        job,
        Duration::from_secs(300),
        |j| j["status"] == "completed",
    )
    .await;

    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients = spawn_submitters(20, &server.base, &acked, &stop);
    while acked.lock().unwrap().len() < 300 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before: Vec<Acked> = acked
        .lock()
        .unwrap()
        .iter()
        .map(|a| Acked {
            cookie: a.cookie.clone(),
            id: a.id.clone(),
            body: a.body.clone(),
        })
        .collect();
    let (ok, stdout, stderr) = doodlebox(args(&[&"backup", &dest, &"--data-dir", &data])).await;
    let during = acked.lock().unwrap().len() - before.len();
    assert!(ok, "backup failed: {stdout}\n{stderr}");
    assert!(stdout.contains("backup written"), "{stdout}");
    let (again, _, stderr) = doodlebox(args(&[&"backup", &dest, &"--data-dir", &data])).await;
    assert!(
        !again,
        "a backup into a non-empty directory must be refused"
    );
    assert!(stderr.contains("not empty"), "{stderr}");
    let (refused, _, stderr) = doodlebox(args(&[&"restore", &dest, &"--data-dir", &data])).await;
    assert!(!refused, "a restore onto a running server must be refused");
    assert!(stderr.contains("is running on"), "{stderr}");
    let (live_ok, live, stderr) = doodlebox(args(&[&"verify", &"--data-dir", &data])).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for c in clients {
        c.await.expect("client task");
    }
    assert!(live_ok, "verify through the server: {live}\n{stderr}");
    assert!(
        live.contains("checks its stores as a job") && live.contains("ok: no problems found"),
        "{live}"
    );
    drop(server);

    let (ok, report, stderr) = doodlebox(args(&[&"verify", &"--data-dir", &dest])).await;
    assert!(ok, "verify of the backup: {report}\n{stderr}");
    assert!(report.contains("models checked: v1"), "{report}");
    let (ok, stdout, stderr) =
        doodlebox(args(&[&"restore", &dest, &"--data-dir", &restored])).await;
    assert!(ok, "restore: {stdout}\n{stderr}");
    let (again, _, stderr) = doodlebox(args(&[&"restore", &dest, &"--data-dir", &restored])).await;
    assert!(!again && stderr.contains("--force"), "{stderr}");
    let (ok, stdout, stderr) = doodlebox(args(&[
        &"restore",
        &dest,
        &"--force",
        &"--data-dir",
        &restored,
    ]))
    .await;
    assert!(ok, "restore --force: {stdout}\n{stderr}");
    let aside = std::fs::read_dir(root.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("restored.before-restore-")
        })
        .count();
    assert_eq!(aside, 1, "--force keeps the old data aside");
    let (ok, report, stderr) = doodlebox(args(&[&"verify", &"--data-dir", &restored])).await;
    assert!(ok, "verify of the restored directory: {report}\n{stderr}");

    let server = start_server(&restored).await;
    let lost = missing_or_changed(&server.base, &before).await;
    println!(
        "backup under 20 submitters: {} acknowledged before it, {during} during it, lost {}",
        before.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "{lost:?}");
    drop(server);

    // Damage: a truncated database in a copy of the backup, a model file gone after restore.
    let damaged = root.path().join("damaged");
    let copied = Command::new("cp")
        .arg("-r")
        .arg(&dest)
        .arg(&damaged)
        .status()
        .unwrap();
    assert!(copied.success());
    let db = damaged.join("doodlebox.sqlite3");
    let len = std::fs::metadata(&db).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let (ok, report, _) = doodlebox(args(&[&"verify", &"--data-dir", &damaged])).await;
    assert!(!ok, "a truncated database must fail verification: {report}");
    assert!(report.contains("PROBLEM: doodlebox.sqlite3"), "{report}");
    std::fs::remove_file(restored.join("models/v1/model.safetensors")).unwrap();
    let (ok, report, _) = doodlebox(args(&[&"verify", &"--data-dir", &restored])).await;
    assert!(!ok, "a missing model file must fail verification: {report}");
    assert!(report.contains("PROBLEM: model v1"), "{report}");
}
