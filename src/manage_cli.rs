//! Maintenance commands that work whether or not a server runs on the data directory:
//! `doodlebox keys create|list|revoke` and `doodlebox models list|activate|rollback`.
//!
//! Keys live only in SQLite, which admits several processes, so key commands write it
//! directly (a running server sees a new key at once and a revoked one within seconds).
//! Activating a model must also swap the model in the running server's memory, so
//! `models activate|rollback` go through the server when one answers on the address in its
//! control file (see [`crate::control`]), and write the database directly otherwise (the
//! next start serves what the database names).

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::accounts::Accounts;
use crate::control::Control;
use crate::domain::admin::{Password, Username};
use crate::ml::classifier::Classifier;
use crate::store::keys::{KeyStore, NewApiKey};
use crate::store::{metadata_path, ModelStore, SqliteMetadataStore};

/// How long a command waits for the running server.
const SERVER_TIMEOUT: Duration = Duration::from_secs(60);

fn metadata(data_dir: &Path) -> anyhow::Result<SqliteMetadataStore> {
    if !metadata_path(data_dir).exists() {
        bail!(
            "{} holds no Doodlebox data yet (start the server once, or pass --data-dir)",
            data_dir.display()
        );
    }
    SqliteMetadataStore::open(&metadata_path(data_dir))
        .with_context(|| format!("opening the metadata database in {}", data_dir.display()))
}

fn accounts(data_dir: &Path) -> anyhow::Result<Accounts> {
    Ok(Accounts::new(std::sync::Arc::new(metadata(data_dir)?)))
}

/// The password for `admin create|reset-password`: the first line of stdin, or a generated
/// one (printed, since it exists nowhere else).
fn new_password(from_stdin: bool) -> anyhow::Result<(Password, bool)> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        let line = line.trim_end_matches(['\n', '\r']);
        return Ok((Password::parse_new(line)?, false));
    }
    let mut bytes = [0u8; 15];
    crate::control::fill_random(&mut bytes);
    // 15 random bytes as 30 hex digits: 120 bits, and easy to type.
    Ok((Password::parse_new(&hex::encode(bytes))?, true))
}

/// Parses the username, gets the password (stdin or generated), runs `change`, and prints a
/// generated password once it has been stored.
fn with_new_password(
    data_dir: &Path,
    username: &str,
    password_stdin: bool,
    change: impl FnOnce(&Accounts, &Username, &Password) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let username = Username::parse(username)?;
    let (password, generated) = new_password(password_stdin)?;
    change(&accounts(data_dir)?, &username, &password)?;
    if generated {
        println!("password (shown only now): {}", password.expose());
    }
    Ok(())
}

/// `doodlebox admin create USER [--password-stdin]`.
pub fn create_admin(data_dir: &Path, username: &str, password_stdin: bool) -> anyhow::Result<()> {
    with_new_password(
        data_dir,
        username,
        password_stdin,
        |accounts, username, password| {
            let admin = accounts.create_admin(username, password)?;
            println!("created admin {} (id {})", admin.username, admin.id);
            Ok(())
        },
    )
}

/// `doodlebox admin reset-password USER [--password-stdin]`: also signs the account out
/// everywhere (a running server checks sessions in the database on every request).
pub fn reset_admin_password(
    data_dir: &Path,
    username: &str,
    password_stdin: bool,
) -> anyhow::Result<()> {
    with_new_password(
        data_dir,
        username,
        password_stdin,
        |accounts, username, password| {
            accounts.reset_password(username, password)?;
            println!("new password set for {username}; its sessions have ended");
            Ok(())
        },
    )
}

/// `doodlebox admin list`.
pub fn list_admins(data_dir: &Path) -> anyhow::Result<()> {
    let admins = accounts(data_dir)?.admins()?;
    if admins.is_empty() {
        println!("no admin accounts yet: `doodlebox admin create USER` makes one (or use the setup link the server prints)");
    }
    for admin in admins {
        println!(
            "{:>4}  {:<24} created {}",
            admin.id,
            admin.username,
            format_ms(admin.created_at)
        );
    }
    Ok(())
}

/// `doodlebox keys create NAME`: the key is printed alone on the last line.
pub fn create_key(data_dir: &Path, name: &str, rate_per_min: Option<u32>) -> anyhow::Result<()> {
    let new = NewApiKey::parse(name, rate_per_min)?;
    let created = metadata(data_dir)?.create_key(&new)?;
    println!(
        "created API key {} {:?} ({} classify requests a minute). It is shown only now; send it as",
        created.row.id, created.row.name, created.row.rate_per_min
    );
    println!("`Authorization: Bearer <key>`. The key:");
    println!("{}", created.key);
    Ok(())
}

/// `doodlebox keys list`.
pub fn list_keys(data_dir: &Path) -> anyhow::Result<()> {
    let keys = metadata(data_dir)?.keys()?;
    if keys.is_empty() {
        println!("no API keys yet: `doodlebox keys create NAME` makes one");
        return Ok(());
    }
    println!(
        "{:>4}  {:<14} {:<24} {:>8}  {:<20} state",
        "id", "prefix", "name", "per min", "last used"
    );
    for k in keys {
        println!(
            "{:>4}  {:<14} {:<24} {:>8}  {:<20} {}",
            k.id,
            k.prefix,
            k.name,
            k.rate_per_min,
            k.last_used_at
                .map(format_ms)
                .unwrap_or_else(|| "never".into()),
            if k.revoked_at.is_some() {
                "revoked"
            } else {
                "live"
            }
        );
    }
    Ok(())
}

/// `doodlebox keys revoke ID`.
pub fn revoke_key(data_dir: &Path, id: i64) -> anyhow::Result<()> {
    match metadata(data_dir)?.revoke_key(id)? {
        Some(k) => {
            println!(
                "revoked API key {} {:?} (a running server refuses it within seconds)",
                k.id, k.name
            );
            Ok(())
        }
        None => bail!("there is no API key {id} (`doodlebox keys list` shows them)"),
    }
}

/// `doodlebox models activate VERSION`.
pub fn activate_model(data_dir: &Path, version: &str) -> anyhow::Result<()> {
    if let Some(server) = running_server(data_dir) {
        let answer = server.post(&format!("/api/v1/admin/models/{version}/activate"))?;
        println!("{version} is active on the running server ({})", server.url);
        drop(answer);
        return Ok(());
    }
    let store = metadata(data_dir)?;
    let row = store
        .model(version)?
        .with_context(|| format!("there is no model {version} (`doodlebox models list`)"))?;
    Classifier::load(Path::new(&row.path))
        .with_context(|| format!("{version} does not load; the active model is unchanged"))?;
    if !store.activate_model(version)? {
        bail!("there is no model {version}");
    }
    println!("{version} is active (no server is running: it serves from the next start)");
    Ok(())
}

/// `doodlebox models rollback`.
pub fn rollback_model(data_dir: &Path) -> anyhow::Result<()> {
    if let Some(server) = running_server(data_dir) {
        let answer = server.post("/api/v1/admin/models/rollback")?;
        let version = answer["active"].as_str().unwrap_or("the previous model");
        println!("rolled back: {version} is active on the running server");
        return Ok(());
    }
    let previous = metadata(data_dir)?
        .previous_model()?
        .context("there is no previously active model to roll back to")?;
    activate_model(data_dir, &previous.version)
}

/// A server that answers on the address its control file names.
pub(crate) struct RunningServer {
    pub(crate) url: String,
    pub(crate) token: String,
    pub(crate) agent: ureq::Agent,
}

/// The server running on `data_dir`, if its control file names one that answers.
pub(crate) fn running_server(data_dir: &Path) -> Option<RunningServer> {
    let control = Control::read(data_dir).ok().flatten()?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(SERVER_TIMEOUT))
        .build()
        .into();
    // A stale file (the server was killed) points at nobody: fall back to the database.
    let alive = agent
        .get(format!("{}/healthz", control.url))
        .call()
        .is_ok_and(|r| r.status().is_success());
    alive.then_some(RunningServer {
        url: control.url,
        token: control.token,
        agent,
    })
}

impl RunningServer {
    /// GETs an admin route's JSON; an error answer becomes an error with the server's message.
    pub(crate) fn get_json(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        let mut response = self
            .agent
            .get(format!("{}{path}", self.url))
            .header("Authorization", &format!("Bearer {}", self.token))
            .call()
            .with_context(|| format!("calling the running server at {}", self.url))?;
        server_answer(&mut response).map_err(|refusal| anyhow::anyhow!("{refusal}"))
    }

    /// POSTs to an admin route; an error answer becomes an error with the server's message.
    fn post(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        let mut response = self
            .agent
            .post(format!("{}{path}", self.url))
            .header("Authorization", &format!("Bearer {}", self.token))
            .send_empty()
            .with_context(|| format!("calling the running server at {}", self.url))?;
        server_answer(&mut response).map_err(|refusal| anyhow::anyhow!("{refusal}"))
    }
}

/// The JSON body of a server's answer, or, for an error status, what the server said
/// (`the server refused (422 …): <message>`), for the caller to put in context.
pub(crate) fn server_answer(
    response: &mut ureq::http::Response<ureq::Body>,
) -> Result<serde_json::Value, String> {
    let status = response.status();
    let body: serde_json::Value = response
        .body_mut()
        .read_json()
        .unwrap_or(serde_json::Value::Null);
    if status.is_success() {
        return Ok(body);
    }
    let message = body["error"]["message"].as_str().unwrap_or("no message");
    Err(format!("the server refused ({status}): {message}"))
}

fn format_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]"
            ))
            .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}
