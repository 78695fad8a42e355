//! First-start secrets: the admin password and the token-signing key.
//!
//! There is no default secret anywhere (Openfire's Chat API shipped one that let anyone in,
//! `specs/openfire.md` §6). Each comes from the configuration or the environment; when
//! absent on first start, a random one is generated and written to a file in the data
//! directory with mode 0600, and its path is printed.

use std::io::Write;
use std::path::{Path, PathBuf};

use actix::Addr;
use switchboard_actors::accounts::Accounts;
use switchboard_actors::model::records::AccountKind;
use switchboard_actors::password::{HashPassword, HashedPassword, PasswordWorker, VerifyPassword};
use switchboard_actors::random::random_hex;
use switchboard_actors::store::{NewUser, UserUpdate};

use crate::auth::ADMIN_USERNAME;
use crate::config::Config;

/// File (in the data directory) holding a generated admin password.
pub const ADMIN_PASSWORD_FILE: &str = "admin-password";
/// File (in the data directory) holding a generated token-signing key.
pub const JWT_SECRET_FILE: &str = "jwt-secret";

/// Writes `contents` to a new file readable by its owner only.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// Makes sure the `admin` account exists with the configured password, or with a generated
/// one on first start. Returns the path of the generated password file, if one was written.
pub async fn ensure_admin(
    accounts: &Accounts,
    passwords: &Addr<PasswordWorker>,
    config: &Config,
) -> Result<Option<PathBuf>, String> {
    let existing = accounts.find(ADMIN_USERNAME).await.map_err(|e| e.to_string())?;
    let configured = config.admin.password.clone();
    if !configured.is_empty() {
        match existing {
            Some(user) => {
                let check = VerifyPassword { password: configured.clone(), phc: user.password_hash.clone() };
                let same = passwords.send(check).await.map_err(|e| e.to_string())?;
                if !same {
                    let hashed = hash(passwords, &configured).await?;
                    accounts
                        .update(UserUpdate {
                            username: ADMIN_USERNAME.into(),
                            password_hash: Some(hashed.phc),
                            scram: Some(hashed.scram),
                            ..Default::default()
                        })
                        .await
                        .map_err(|e| e.to_string())?;
                    tracing::info!("admin password updated from the configuration");
                }
            }
            None => create_admin(accounts, passwords, &configured).await?,
        }
        return Ok(None);
    }
    if existing.is_some() {
        return Ok(None);
    }
    let generated = random_hex(12);
    let path = config.server.data_dir.join(ADMIN_PASSWORD_FILE);
    write_private(&path, &generated).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    create_admin(accounts, passwords, &generated).await?;
    Ok(Some(path))
}

async fn hash(passwords: &Addr<PasswordWorker>, password: &str) -> Result<HashedPassword, String> {
    passwords.send(HashPassword { password: password.to_owned() }).await.map_err(|e| e.to_string())
}

async fn create_admin(accounts: &Accounts, passwords: &Addr<PasswordWorker>, password: &str) -> Result<(), String> {
    let hashed = hash(passwords, password).await?;
    accounts
        .create(NewUser {
            username: ADMIN_USERNAME.into(),
            kind: AccountKind::User,
            password_hash: hashed.phc,
            name: "Administrator".into(),
            email: String::new(),
            properties: Vec::new(),
            scram: hashed.scram,
        })
        .await
        .map_err(|e| e.to_string())
}

/// The token-signing key: configured, or kept in `DATA/jwt-secret` (generated once).
pub fn jwt_secret(config: &Config) -> Result<Vec<u8>, String> {
    if !config.auth.jwt_secret.is_empty() {
        return Ok(config.auth.jwt_secret.as_bytes().to_vec());
    }
    let path = config.server.data_dir.join(JWT_SECRET_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => Ok(text.trim().as_bytes().to_vec()),
        _ => {
            let secret = random_hex(32);
            write_private(&path, &secret).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            tracing::info!(path = %path.display(), "generated the token-signing key");
            Ok(secret.into_bytes())
        }
    }
}
