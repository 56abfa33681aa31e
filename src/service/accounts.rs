//! Admin accounts: the first-admin setup link, password login, server-side sessions, and the
//! account commands of the CLI.
//!
//! There is no default account. When a server starts with no admin it issues a single-use
//! setup link (valid for [`SETUP_LINK_TTL`]) and prints it; the page behind it creates the first
//! admin. Passwords are hashed with argon2id at [`ARGON2_M_KIB`], [`ARGON2_T`], [`ARGON2_P`]
//! (at least OWASP's minimum). A session is a random token kept by the browser in an
//! `HttpOnly` cookie; the database keeps only its SHA-256, so a copy of the database lets
//! nobody in. Hashing takes tens of milliseconds on purpose: call these from blocking
//! threads.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::domain::admin::{CredentialError, Password, Username};
use crate::domain::AdminId;
use crate::store::admins::{AdminRow, AdminStore, SetupOutcome};
use crate::store::{now_ms, StoreError};

/// argon2id memory cost in KiB (19 MiB, OWASP's minimum for argon2id).
pub const ARGON2_M_KIB: u32 = 19 * 1024;
/// argon2id passes over memory.
pub const ARGON2_T: u32 = 2;
/// argon2id lanes.
pub const ARGON2_P: u32 = 1;
/// How long a setup link works.
pub const SETUP_LINK_TTL: Duration = Duration::from_secs(30 * 60);
/// A session ends after this long without a request.
pub const SESSION_IDLE: Duration = Duration::from_secs(12 * 3600);
/// A session ends this long after login, used or not.
pub const SESSION_MAX: Duration = Duration::from_secs(7 * 24 * 3600);
/// A session's last-seen time is written at most this often (not on every request).
const TOUCH_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Error)]
pub enum AccountError {
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    #[error("wrong username or password")]
    WrongPassword,
    #[error("this setup link is unknown, already used or expired; restart the server for a new one, or run `doodlebox admin create USER --password-stdin`")]
    BadSetupToken,
    #[error("an admin account exists already; sign in instead")]
    AlreadySetUp,
    #[error("the username {0:?} is taken")]
    UsernameTaken(String),
    #[error("there is no admin {0:?} (`doodlebox admin list` shows them)")]
    NoSuchAdmin(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A session just opened: the token for the cookie (it exists nowhere else) and its lifetime.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub token: String,
    pub username: String,
    pub max_age: Duration,
}

/// Who a valid session belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminIdentity {
    pub admin_id: AdminId,
    pub username: String,
}

/// The account service over the admin tables.
pub struct Accounts {
    store: Arc<dyn AdminStore>,
}

impl Accounts {
    pub fn new(store: Arc<dyn AdminStore>) -> Self {
        Self { store }
    }

    /// On a server with no admin yet: a fresh setup token (replacing any earlier unused one),
    /// to be shown as `/admin/setup.html?token=...`. `None` once an admin exists.
    pub fn issue_setup_token(&self) -> Result<Option<String>, AccountError> {
        if self.store.admin_count()? > 0 {
            return Ok(None);
        }
        let token = random_token();
        let now = now_ms() as i64;
        self.store.put_setup_token(
            &digest(&token),
            now,
            now + SETUP_LINK_TTL.as_millis() as i64,
        )?;
        Ok(Some(token))
    }

    /// Whether any admin exists (the login page offers setup help when none does).
    pub fn has_admin(&self) -> Result<bool, AccountError> {
        Ok(self.store.admin_count()? > 0)
    }

    /// Spends a setup token on the first admin account and signs it in.
    pub fn set_up(
        &self,
        token: &str,
        username: &Username,
        password: &Password,
    ) -> Result<NewSession, AccountError> {
        let hash = hash_password(password)?;
        let now = now_ms() as i64;
        match self
            .store
            .setup_first_admin(&digest(token), username.as_str(), &hash, now)?
        {
            SetupOutcome::Created(admin) => self.open_session(&admin),
            SetupOutcome::BadToken => Err(AccountError::BadSetupToken),
            SetupOutcome::AlreadySetUp => Err(AccountError::AlreadySetUp),
            SetupOutcome::Taken => Err(AccountError::UsernameTaken(username.to_string())),
        }
    }

    /// Checks a username and password and opens a session. An unknown username costs the same
    /// hashing work as a wrong password, so timing does not tell which usernames exist.
    pub fn log_in(&self, username: &str, password: &str) -> Result<NewSession, AccountError> {
        if password.len() > crate::domain::admin::PASSWORD_MAX {
            return Err(AccountError::WrongPassword);
        }
        match self.store.admin_by_name(username.trim())? {
            Some((admin, hash)) if verify_password(&hash, password) => self.open_session(&admin),
            Some(_) => Err(AccountError::WrongPassword),
            None => {
                verify_password(dummy_hash(), password);
                Err(AccountError::WrongPassword)
            }
        }
    }

    /// The admin a session token belongs to, when the session is still valid.
    pub fn authenticate(&self, token: &str) -> Result<Option<AdminIdentity>, AccountError> {
        let key = digest(token);
        let Some(session) = self.store.session(&key)? else {
            return Ok(None);
        };
        let now = now_ms() as i64;
        let idle_since = now - session.last_seen_at;
        if now >= session.expires_at || idle_since >= SESSION_IDLE.as_millis() as i64 {
            self.store.delete_session(&key)?;
            return Ok(None);
        }
        if idle_since >= TOUCH_EVERY.as_millis() as i64 {
            self.store.touch_session(&key, now)?;
        }
        Ok(Some(AdminIdentity {
            admin_id: AdminId::from_row(session.admin_id),
            username: session.username,
        }))
    }

    /// Whether the session `token` is still valid (not logged out, expired, idle too long or
    /// ended by a password reset), without counting as activity: an open event stream
    /// asks this periodically and must not keep an idle session alive.
    pub fn is_live(&self, token: &str) -> Result<bool, AccountError> {
        let Some(session) = self.store.session(&digest(token))? else {
            return Ok(false);
        };
        let now = now_ms() as i64;
        Ok(
            now < session.expires_at
                && now - session.last_seen_at < SESSION_IDLE.as_millis() as i64,
        )
    }

    /// Ends a session (nothing happens for an unknown token).
    pub fn log_out(&self, token: &str) -> Result<(), AccountError> {
        Ok(self.store.delete_session(&digest(token))?)
    }

    /// `doodlebox admin create`.
    pub fn create_admin(
        &self,
        username: &Username,
        password: &Password,
    ) -> Result<AdminRow, AccountError> {
        let hash = hash_password(password)?;
        self.store
            .create_admin(username.as_str(), &hash, now_ms() as i64)?
            .ok_or_else(|| AccountError::UsernameTaken(username.to_string()))
    }

    /// `doodlebox admin reset-password`: a new password, and every session of the account ends.
    pub fn reset_password(
        &self,
        username: &Username,
        password: &Password,
    ) -> Result<(), AccountError> {
        let hash = hash_password(password)?;
        if self
            .store
            .set_password(username.as_str(), &hash, now_ms() as i64)?
        {
            Ok(())
        } else {
            Err(AccountError::NoSuchAdmin(username.to_string()))
        }
    }

    pub fn admins(&self) -> Result<Vec<AdminRow>, AccountError> {
        Ok(self.store.admins()?)
    }

    /// Forgets expired sessions (run now and then).
    pub fn purge_sessions(&self) -> Result<usize, AccountError> {
        Ok(self.store.purge_sessions(now_ms() as i64)?)
    }

    fn open_session(&self, admin: &AdminRow) -> Result<NewSession, AccountError> {
        let token = random_token();
        let now = now_ms() as i64;
        self.store.create_session(
            &digest(&token),
            admin.id,
            now,
            now + SESSION_MAX.as_millis() as i64,
        )?;
        Ok(NewSession {
            token,
            username: admin.username.clone(),
            max_age: SESSION_MAX,
        })
    }
}

fn argon2() -> Argon2<'static> {
    // The constants are within argon2's documented bounds, so the parameters are valid.
    let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, None)
        .expect("argon2 parameters are valid constants");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// An argon2id PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`).
pub fn hash_password(password: &Password) -> Result<String, AccountError> {
    let mut salt = [0u8; 16];
    crate::control::fill_random(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| AccountError::Hash(e.to_string()))?;
    argon2()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

/// Whether `candidate` matches a stored PHC string (with the parameters stored in it).
pub fn verify_password(stored: &str, candidate: &str) -> bool {
    PasswordHash::new(stored)
        .map(|hash| {
            argon2()
                .verify_password(candidate.as_bytes(), &hash)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash of a password nobody knows, to spend the same time on unknown usernames.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let password = Password::parse_new(&random_token()).expect("64 hex digits is long enough");
        hash_password(&password).unwrap_or_default()
    })
}

/// 256 bits of operating-system randomness as 64 hex digits.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    crate::control::fill_random(&mut bytes);
    hex::encode(bytes)
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteMetadataStore;

    fn accounts() -> (Accounts, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteMetadataStore::open(&dir.path().join("m.sqlite3")).unwrap();
        (Accounts::new(Arc::new(store)), dir)
    }

    fn credentials() -> (Username, Password) {
        (
            Username::parse("teacher").unwrap(),
            Password::parse_new("correct horse battery").unwrap(),
        )
    }

    #[test]
    fn passwords_are_hashed_with_argon2id_at_the_promised_cost() {
        let hash = hash_password(&credentials().1).unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_password(&hash, "correct horse battery"));
        assert!(!verify_password(&hash, "correct horse battery!"));
        assert!(!verify_password("not a hash", "anything"));
    }

    #[test]
    fn a_setup_token_makes_the_first_admin_once_and_then_is_spent() {
        let (accounts, _dir) = accounts();
        let (user, password) = credentials();
        let token = accounts.issue_setup_token().unwrap().expect("no admin yet");
        assert!(matches!(
            accounts.set_up("wrong", &user, &password),
            Err(AccountError::BadSetupToken)
        ));
        let session = accounts.set_up(&token, &user, &password).unwrap();
        assert_eq!(
            accounts
                .authenticate(&session.token)
                .unwrap()
                .unwrap()
                .username,
            "teacher"
        );
        assert!(matches!(
            accounts.set_up(&token, &user, &password),
            Err(AccountError::BadSetupToken)
        ));
        assert_eq!(accounts.issue_setup_token().unwrap(), None);
    }

    #[test]
    fn a_reset_password_ends_every_session_and_the_old_password_stops_working() {
        let (accounts, _dir) = accounts();
        let (user, password) = credentials();
        accounts.create_admin(&user, &password).unwrap();
        let session = accounts.log_in("TEACHER", "correct horse battery").unwrap();
        let new = Password::parse_new("a much newer password").unwrap();
        accounts.reset_password(&user, &new).unwrap();
        assert_eq!(accounts.authenticate(&session.token).unwrap(), None);
        assert!(matches!(
            accounts.log_in("teacher", "correct horse battery"),
            Err(AccountError::WrongPassword)
        ));
        assert!(accounts.log_in("teacher", "a much newer password").is_ok());
        assert!(matches!(
            accounts.log_in("nobody", "a much newer password"),
            Err(AccountError::WrongPassword)
        ));
    }
}
