//! `doodlebox admin create|reset-password|list`: admin accounts for the portal.
//!
//! Accounts live only in SQLite, which admits several processes, so these commands write
//! the database directly, whether or not a server runs (a running server checks sessions in
//! the database on every request, so a reset password signs the admin out at once).

use std::path::Path;

use anyhow::Context;

use super::local::{format_ms, open_metadata};
use crate::domain::admin::{Password, Username};
use crate::service::accounts::Accounts;

fn accounts(data_dir: &Path) -> anyhow::Result<Accounts> {
    Ok(Accounts::new(std::sync::Arc::new(open_metadata(data_dir)?)))
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
