//! `switchboard user|room|group …`: the admin command line, in the way `ejabberdctl` and
//! `prosodyctl` are used. Each command is one call to a running server's admin API
//! (`--server`, by default the configured listen address), as the admin: the password
//! comes from `--admin-password`, `SWITCHBOARD_ADMIN_PASSWORD`, or the data directory's
//! `admin-password` file. Output is a line per item, or the server's JSON with `--json`.
//!
//! Exit codes: 0 done; 1 the server refused (its message is printed); 2 bad usage or
//! configuration; 3 the server could not be reached.

use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::config::Config;
use crate::secrets::ADMIN_PASSWORD_FILE;
use crate::urls::component as segment;

/// How to reach the server.
#[derive(Args, Debug, Clone)]
pub struct Connection {
    /// The server's base URL (default: http:// and the configured server.bind).
    #[arg(long, global = true, value_name = "URL")]
    pub server: Option<String>,
    /// The admin password (default: SWITCHBOARD_ADMIN_PASSWORD, then DATA/admin-password).
    #[arg(long, global = true, value_name = "PASSWORD")]
    pub admin_password: Option<String>,
    /// Print the server's JSON instead of lines.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// MUC rooms.
    #[command(subcommand)]
    Room(RoomCommand),
    /// User groups.
    #[command(subcommand)]
    Group(GroupCommand),
}

/// A new password: given, or read from standard input (first line).
#[derive(Args, Debug)]
pub struct NewPassword {
    #[arg(long, value_name = "PASSWORD", conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create an account.
    Add {
        username: String,
        #[command(flatten)]
        password: NewPassword,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        email: Option<String>,
    },
    /// List accounts (matching --search).
    List {
        #[arg(long)]
        search: Option<String>,
    },
    /// Delete an account; its connections end.
    Delete { username: String },
    /// Set an account's password.
    Passwd {
        username: String,
        #[command(flatten)]
        password: NewPassword,
    },
    /// Lock an account out: it signs in nowhere and its connections end.
    Lock { username: String },
    /// Let a locked-out account in again.
    Unlock { username: String },
}

#[derive(Subcommand, Debug)]
pub enum RoomCommand {
    /// Create a persistent room.
    Create {
        name: String,
        /// Its display name.
        #[arg(long)]
        natural_name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// Only members may enter.
        #[arg(long)]
        members_only: bool,
        /// Not listed in the directory.
        #[arg(long)]
        hidden: bool,
        /// Owners (user names).
        #[arg(long = "owner", value_name = "USER")]
        owners: Vec<String>,
    },
    /// List rooms.
    List,
    /// Destroy a room; its occupants are told.
    Delete { name: String },
}

#[derive(Subcommand, Debug)]
pub enum GroupCommand {
    /// Create a group.
    Add {
        name: String,
        #[arg(long)]
        description: Option<String>,
        /// Its people see each other in their contacts.
        #[arg(long)]
        shared: bool,
        /// Members (user names).
        #[arg(long = "member", value_name = "USER")]
        members: Vec<String>,
    },
    /// List groups.
    List,
    /// Delete a group.
    Delete { name: String },
    /// Show a group's people, adding or removing some first.
    Members {
        name: String,
        #[arg(long = "add", value_name = "USER")]
        add: Vec<String>,
        #[arg(long = "remove", value_name = "USER")]
        remove: Vec<String>,
    },
}

/// Why a command did not complete.
enum Failure {
    Usage(String),
    Refused(u16, String),
    Unreachable(String),
}

impl Failure {
    fn exit(self) -> ExitCode {
        match self {
            Failure::Usage(m) => {
                eprintln!("switchboard: {m}");
                ExitCode::from(2)
            }
            Failure::Refused(status, m) => {
                eprintln!("switchboard: the server refused ({status}): {m}");
                ExitCode::from(1)
            }
            Failure::Unreachable(m) => {
                eprintln!("switchboard: {m}");
                ExitCode::from(3)
            }
        }
    }
}

/// The admin API of one server.
struct AdminApi {
    client: awc::Client,
    base: String,
    password: String,
}

impl AdminApi {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Failure> {
        let url = format!("{}/restapi/v1{path}", self.base);
        let request = match method {
            "GET" => self.client.get(&url),
            "POST" => self.client.post(&url),
            "PUT" => self.client.put(&url),
            _ => self.client.delete(&url),
        }
        .basic_auth("admin", &self.password);
        let sent = match body {
            Some(body) => request.send_json(&body).await,
            None => request.send().await,
        };
        let mut response = sent.map_err(|e| Failure::Unreachable(format!("cannot reach {}: {e}", self.base)))?;
        let status = response.status();
        let bytes = response
            .body()
            .limit(64 * 1024 * 1024)
            .await
            .map_err(|e| Failure::Unreachable(format!("reading the answer from {}: {e}", self.base)))?;
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            Ok(value)
        } else {
            let message = value["message"].as_str().map(str::to_owned).unwrap_or_else(|| {
                let text = String::from_utf8_lossy(&bytes).trim().to_owned();
                if text.is_empty() {
                    status.canonical_reason().unwrap_or("error").to_owned()
                } else {
                    text
                }
            });
            Err(Failure::Refused(status.as_u16(), message))
        }
    }
}

/// Runs an admin command against the server the configuration points at.
pub fn run(command: Command, connection: Connection, config: &Config) -> ExitCode {
    let base = connection.server.clone().unwrap_or_else(|| format!("http://{}", config.server.bind));
    let base = base.trim_end_matches('/').to_owned();
    let password = match admin_password(&connection, config) {
        Ok(password) => password,
        Err(failure) => return failure.exit(),
    };
    let system = actix_web::rt::System::new();
    let outcome = system.block_on(async move {
        let client = awc::Client::builder().timeout(Duration::from_secs(30)).finish();
        let api = AdminApi { client, base, password };
        execute(&api, command, connection.json).await
    });
    match outcome {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(failure) => failure.exit(),
    }
}

fn admin_password(connection: &Connection, config: &Config) -> Result<String, Failure> {
    if let Some(password) = connection.admin_password.clone().filter(|p| !p.is_empty()) {
        return Ok(password);
    }
    if !config.admin.password.is_empty() {
        return Ok(config.admin.password.clone());
    }
    let path = config.server.data_dir.join(ADMIN_PASSWORD_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => Ok(text.trim().to_owned()),
        _ => Err(Failure::Usage(format!(
            "no admin password: give --admin-password, set SWITCHBOARD_ADMIN_PASSWORD, or run where {} exists",
            path.display()
        ))),
    }
}

fn new_password(given: NewPassword) -> Result<String, Failure> {
    let password = match (given.password, given.password_stdin) {
        (Some(password), _) => password,
        (None, true) => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| Failure::Usage(format!("reading the password from standard input: {e}")))?;
            text.lines().next().unwrap_or_default().to_owned()
        }
        (None, false) => return Err(Failure::Usage("give --password or --password-stdin".into())),
    };
    if password.is_empty() {
        return Err(Failure::Usage("the password must not be empty".into()));
    }
    Ok(password)
}

fn text_list(value: &Value, key: &str) -> Vec<Value> {
    value[key].as_array().cloned().unwrap_or_default()
}

/// A listing: the server's JSON with `--json`, else one line per item of `key`.
fn listing(value: Value, key: &str, as_json: bool, line: impl Fn(&Value) -> String) -> Vec<String> {
    if as_json {
        return vec![value.to_string()];
    }
    text_list(&value, key).iter().map(line).collect()
}

async fn execute(api: &AdminApi, command: Command, as_json: bool) -> Result<Vec<String>, Failure> {
    let done = |value: Value, line: String| if as_json { vec![value.to_string()] } else { vec![line] };
    match command {
        Command::User(UserCommand::Add { username, password, name, email }) => {
            let password = new_password(password)?;
            let body = json!({"username": username, "password": password, "name": name, "email": email});
            let value = api.call("POST", "/users", Some(body)).await?;
            Ok(done(value, format!("created user {username}")))
        }
        Command::User(UserCommand::List { search }) => {
            let path = match search {
                Some(search) => format!("/users?search={}", segment(&search)),
                None => "/users".into(),
            };
            let value = api.call("GET", &path, None).await?;
            Ok(listing(value, "users", as_json, |u| {
                let name = u["name"].as_str().unwrap_or_default();
                let email = u["email"].as_str().unwrap_or_default();
                format!("{}\t{}\t{}", u["username"].as_str().unwrap_or_default(), name, email)
            }))
        }
        Command::User(UserCommand::Delete { username }) => {
            let value = api.call("DELETE", &format!("/users/{}", segment(&username)), None).await?;
            Ok(done(value, format!("deleted user {username}")))
        }
        Command::User(UserCommand::Passwd { username, password }) => {
            let password = new_password(password)?;
            let path = format!("/users/{}", segment(&username));
            let value = api.call("PUT", &path, Some(json!({"password": password}))).await?;
            Ok(done(value, format!("set the password of {username}")))
        }
        Command::User(UserCommand::Lock { username }) => {
            let value = api.call("POST", &format!("/lockouts/{}", segment(&username)), Some(json!({}))).await?;
            Ok(done(value, format!("locked out {username}")))
        }
        Command::User(UserCommand::Unlock { username }) => {
            let value = api.call("DELETE", &format!("/lockouts/{}", segment(&username)), None).await?;
            Ok(done(value, format!("let {username} in again")))
        }
        Command::Room(RoomCommand::Create { name, natural_name, description, members_only, hidden, owners }) => {
            let body = json!({
                "roomName": name,
                "naturalName": natural_name.unwrap_or_else(|| name.clone()),
                "description": description,
                "membersOnly": members_only,
                "publicRoom": !hidden,
                "persistent": true,
                "owners": owners,
            });
            let value = api.call("POST", "/chatrooms", Some(body)).await?;
            Ok(done(value, format!("created room {name}")))
        }
        Command::Room(RoomCommand::List) => {
            let value = api.call("GET", "/chatrooms?type=all", None).await?;
            Ok(listing(value, "chatRooms", as_json, |r| {
                let (name, natural) = (r["roomName"].as_str(), r["naturalName"].as_str());
                format!(
                    "{}\t{}\t{} occupants",
                    name.unwrap_or_default(),
                    natural.unwrap_or_default(),
                    r["occupantCount"]
                )
            }))
        }
        Command::Room(RoomCommand::Delete { name }) => {
            let value = api.call("DELETE", &format!("/chatrooms/{}", segment(&name)), None).await?;
            Ok(done(value, format!("destroyed room {name}")))
        }
        Command::Group(GroupCommand::Add { name, description, shared, members }) => {
            let body = json!({"name": name, "description": description, "shared": shared, "members": members});
            let value = api.call("POST", "/groups", Some(body)).await?;
            Ok(done(value, format!("created group {name}")))
        }
        Command::Group(GroupCommand::List) => {
            let value = api.call("GET", "/groups", None).await?;
            Ok(listing(value, "groups", as_json, |g| {
                let people = text_list(g, "members").len() + text_list(g, "admins").len();
                let shared = if g["shared"] == true { "shared" } else { "not shared" };
                format!("{}\t{people} people\t{shared}", g["name"].as_str().unwrap_or_default())
            }))
        }
        Command::Group(GroupCommand::Delete { name }) => {
            let value = api.call("DELETE", &format!("/groups/{}", segment(&name)), None).await?;
            Ok(done(value, format!("deleted group {name}")))
        }
        Command::Group(GroupCommand::Members { name, add, remove }) => {
            let group = segment(&name);
            for user in &add {
                api.call("POST", &format!("/users/{}/groups/{group}", segment(user)), None).await?;
            }
            for user in &remove {
                api.call("DELETE", &format!("/users/{}/groups/{group}", segment(user)), None).await?;
            }
            let value = api.call("GET", &format!("/groups/{group}"), None).await?;
            if as_json {
                return Ok(vec![value.to_string()]);
            }
            let mut lines: Vec<String> = text_list(&value, "admins")
                .iter()
                .map(|a| format!("{}\tadmin", a.as_str().unwrap_or_default()))
                .collect();
            lines.extend(
                text_list(&value, "members").iter().map(|m| format!("{}\tmember", m.as_str().unwrap_or_default())),
            );
            Ok(lines)
        }
    }
}
