//! The command line: `--help`, a bad bind address, keys, admin accounts, import and export,
//! and models, with and without a running server.

use super::*;

#[test]
fn help_lists_every_command_and_its_environment_variables() {
    let out = Command::new(BINARY).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in ["serve", "doctor", "DOODLEBOX_DATA_DIR", "DOODLEBOX_BIND"] {
        assert!(text.contains(needle), "--help lacks {needle}:\n{text}");
    }
}

#[test]
fn a_bad_bind_address_exits_non_zero_with_a_clear_message() {
    let out = Command::new(BINARY)
        .args(["--bind", "not-an-address"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bind"));
}

#[test]
fn keys_create_works_while_the_server_runs_and_prints_the_key_last() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let out = Command::new(BINARY)
        .args([
            "keys",
            "create",
            "ci robot",
            "--rate-per-min",
            "120",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let key = stdout.lines().last().unwrap().trim().to_owned();
    assert!(key.starts_with("dbx_") && key.len() == 68, "{stdout}");
    let classify = |key: &str| {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent()
            .post(format!("{}/api/v1/classify", server.base))
            .header("Authorization", &format!("Bearer {key}"))
            .send_json(serde_json::json!({"drawing": [[[0, 50, 100], [0, 50, 100]]]}))
            .unwrap()
            .status()
            .as_u16()
    };
    // The running server accepts the new key at once (503: no model is active yet).
    assert_eq!(classify(&key), 503);
    assert_eq!(classify("dbx_unknown"), 401);
    let listed = Command::new(BINARY)
        .args(["keys", "list", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(
        listed.contains("ci robot") && listed.contains("live"),
        "{listed}"
    );
    assert!(!listed.contains(&key[4..]), "{listed}");
    let revoked = Command::new(BINARY)
        .args(["keys", "revoke", "1", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(revoked.status.success());
    // Revoked from another process: refused within the cache time (5 s).
    let started = std::time::Instant::now();
    while classify(&key) != 401 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "still accepted"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let bad = Command::new(BINARY)
        .args(["keys", "create", "", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("name"));
    drop(server);
}

#[test]
fn the_server_prints_a_setup_link_and_admin_commands_work_while_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let link = server
        .printed("admin setup: ")
        .expect("a fresh server prints the setup link");
    assert!(link.contains("/admin/setup?token="), "{link}");
    let admin = |args: &[&str], stdin: &str| {
        let mut child = Command::new(BINARY)
            .arg("admin")
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let created = admin(
        &["create", "lab-lead", "--password-stdin"],
        "a long passphrase\n",
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let login = |password: &str| {
        agent
            .post(format!("{}/api/v1/admin/login", server.base))
            .send_json(json!({"username": "lab-lead", "password": password}))
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(
        login("a long passphrase"),
        200,
        "the running server sees the new admin"
    );
    let taken = admin(
        &["create", "lab-lead", "--password-stdin"],
        "another long one\n",
    );
    assert!(!taken.status.success());
    assert!(String::from_utf8_lossy(&taken.stderr).contains("taken"));
    let weak = admin(&["create", "someone", "--password-stdin"], "short\n");
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("at least 10"));

    let reset = admin(&["reset-password", "lab-lead"], "");
    assert!(reset.status.success());
    let printed = String::from_utf8(reset.stdout).unwrap();
    let password = printed
        .lines()
        .find_map(|l| l.strip_prefix("password (shown only now): "))
        .expect("a generated password is printed")
        .to_owned();
    assert_eq!(login("a long passphrase"), 401);
    assert_eq!(login(&password), 200);
    let listed = admin(&["list"], "");
    assert!(String::from_utf8_lossy(&listed.stdout).contains("lab-lead"));
    drop(server);
}

/// `n` raw Quick, Draw! lines of circles with keys `{prefix}{i}`.
fn raw_circles(prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let i = i as i64;
            json!({"word": "circle", "countrycode": "GB", "timestamp": "2017-02-01 12:00:00.5 UTC",
                   "recognized": true, "key_id": format!("{prefix}{i}"),
                   "drawing": [[[10 + i, 60, 110], [20, 70 + i, 20], [0, 16, 40]], [[5], [5], [90]]]})
            .to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_import_and_export_work_with_and_without_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = dir.path().join("first.ndjson");
    let mut lines = raw_circles("a", 5);
    lines.insert(2, "{broken".into());
    std::fs::write(&first, lines.join("\n")).unwrap();

    // No server: the command opens the stores itself.
    let (ok, stdout, stderr) = run_cli(&["import"], &data, &[&first]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("imported 5, skipped 0 duplicates, 1 bad lines"),
        "{stdout}"
    );
    assert!(
        stderr.contains("first.ndjson:3: "),
        "the bad line is named: {stderr}"
    );

    // With a server: the files are streamed to it (the stroke store admits one process).
    let server = start_server(&data).await;
    let second = dir.path().join("second.ndjson");
    std::fs::write(&second, raw_circles("b", 3).join("\n")).unwrap();
    let (ok, stdout, stderr) = run_cli(&["import"], &data, &[&first, &second]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("first.ndjson: imported 0, skipped 5 duplicates"),
        "{stdout}"
    );
    assert!(stdout.contains("second.ndjson: imported 3"), "{stdout}");
    assert_eq!(readyz(&server.base).await["drawings"], 8);
    let raw = dir.path().join("raw.ndjson");
    let (ok, stdout, stderr) = run_cli(
        &["export", "--format", "quickdraw-raw", "--out"],
        &data,
        &[&raw],
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("exported 8 drawings"), "{stdout}");
    let exported: Vec<Value> = std::fs::read_to_string(&raw)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let sent: Value = serde_json::from_str(&raw_circles("b", 3)[2]).unwrap();
    assert_eq!(exported[7], sent, "raw export gives back the imported line");
    let npy_through_server = dir.path().join("npy-server");
    let (ok, _, stderr) = run_cli(
        &["export", "--format", "npy", "--out"],
        &data,
        &[&npy_through_server],
    );
    assert!(ok, "{stderr}");
    let from_server = std::fs::read(npy_through_server.join("circle.npy")).unwrap();
    drop(server);

    // The server is gone (its control file is stale): the command exports by itself.
    let npy = dir.path().join("npy");
    let (ok, stdout, stderr) = run_cli(
        &["export", "--format", "npy", "--shape", "circle", "--out"],
        &data,
        &[&npy],
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("circle.npy: 8 drawings"), "{stdout}");
    let file = std::fs::read(npy.join("circle.npy")).unwrap();
    assert_eq!(file.len(), 128 + 8 * 784);
    assert!(String::from_utf8_lossy(&file[..128]).contains("'shape': (8, 784)"));
    assert_eq!(
        file, from_server,
        "the server and the command write the same file"
    );
    let (ok, _, stderr) = run_cli(&["export", "--format", "csv", "--out"], &data, &[&raw]);
    assert!(!ok);
    assert!(stderr.contains("--format"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_activate_and_rollback_without_a_server_refuse_what_the_registry_refuses() {
    let dir = tempfile::tempdir().unwrap();
    // One start creates the data directory; the commands then find no server answering.
    drop(start_server(dir.path()).await);
    let (ok, _, stderr) = run_cli(&["models", "activate", "v999"], dir.path(), &[]);
    assert!(!ok);
    assert!(stderr.contains("there is no model v999"), "{stderr}");
    let (ok, _, stderr) = run_cli(&["models", "activate", "../v1"], dir.path(), &[]);
    assert!(!ok);
    assert!(stderr.contains("there is no model ../v1"), "{stderr}");
    let (ok, _, stderr) = run_cli(&["models", "rollback"], dir.path(), &[]);
    assert!(!ok);
    assert!(
        stderr.contains("no previously active model to roll back to"),
        "{stderr}"
    );
}
