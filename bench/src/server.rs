//! What the bench asks of the server outside the measured phase: accounts (created through
//! Switchboard's admin API, read from a file, or left to XEP-0077), tokens, `/metrics`, and
//! the server process's memory and CPU from `/proc`.

use std::sync::Arc;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde_json::json;

use crate::http::{request, Auth};
use crate::target::Target;
use crate::BenchError;

/// An account the bench signs in with.
#[derive(Debug, Clone)]
pub struct Account {
    pub username: String,
    pub password: String,
}

/// Accounts are set up this many at a time (the server hashes passwords on its own threads).
const SETUP_CONCURRENCY: usize = 16;

/// Switchboard's admin API.
#[derive(Clone)]
pub struct Admin {
    pub server: Target,
    password: Arc<str>,
}

impl Admin {
    /// Checks that the server answers and takes the admin password.
    pub async fn connect(server: &Target, password: &str) -> Result<Admin, BenchError> {
        let admin = Admin { server: server.clone(), password: password.into() };
        let answer = request(server, "GET", "/metrics", admin.auth(), None).await?;
        match answer.status {
            200 => Ok(admin),
            401 | 403 => Err(BenchError::Refused(format!(
                "the server at {} refused the admin login ({}): pass the admin password with --admin-password \
                 or SWITCHBOARD_ADMIN_PASSWORD (a new server writes it to data/admin-password)",
                server.authority(),
                answer.status
            ))),
            404 => Err(BenchError::Refused(format!(
                "{} has no /metrics: is it Switchboard? (for another XMPP server use --users-file or --register)",
                server.authority()
            ))),
            other => Err(BenchError::Server(format!("GET /metrics answered {other}: {}", answer.text()))),
        }
    }

    fn auth(&self) -> Auth<'_> {
        Auth::Basic("admin", &self.password)
    }

    /// Creates `count` accounts named `{prefix}{n}` with random passwords.
    pub async fn create_users(&self, prefix: &str, count: usize) -> Result<Vec<Account>, BenchError> {
        self.create_accounts(prefix, count, "user").await
    }

    /// Creates `count` accounts of `kind` (`user`, or `http` for HTTP API users) named
    /// `{prefix}{n}` with random passwords.
    pub async fn create_accounts(&self, prefix: &str, count: usize, kind: &str) -> Result<Vec<Account>, BenchError> {
        stream::iter(0..count)
            .map(|n| {
                let account = Account { username: format!("{prefix}{n}"), password: crate::random_hex(12) };
                async move {
                    let body = json!({ "username": account.username, "password": account.password, "kind": kind });
                    let answer = request(&self.server, "POST", "/restapi/v1/users", self.auth(), Some(&body)).await?;
                    match answer.status {
                        201 => Ok(account),
                        status => Err(BenchError::Refused(format!(
                            "creating user {} answered {status}: {}",
                            account.username,
                            answer.text()
                        ))),
                    }
                }
            })
            .buffered(SETUP_CONCURRENCY)
            .try_collect()
            .await
    }

    /// Creates an external app named `name`: its id and bearer token.
    pub async fn create_app(&self, name: &str) -> Result<(String, String), BenchError> {
        let answer =
            request(&self.server, "POST", "/restapi/v1/apps", self.auth(), Some(&json!({ "name": name }))).await?;
        if answer.status != 201 {
            return Err(BenchError::Refused(format!(
                "creating app {name} answered {}: {}",
                answer.status,
                answer.text()
            )));
        }
        let created = answer.json()?;
        let field = |k: &str| {
            created[k].as_str().map(str::to_owned).ok_or_else(|| BenchError::Server(format!("no {k} in {created}")))
        };
        Ok((field("id")?, field("token")?))
    }

    /// Removes an app and its account (best effort).
    pub async fn delete_app(&self, id: &str) -> bool {
        let path = format!("/restapi/v1/apps/{id}");
        matches!(request(&self.server, "DELETE", &path, self.auth(), None).await, Ok(r) if r.status == 200)
    }

    /// Removes the bench's accounts (best effort: a failure is reported, not fatal).
    pub async fn delete_users(&self, accounts: &[Account]) -> usize {
        stream::iter(accounts)
            .map(|a| async move {
                let path = format!("/restapi/v1/users/{}", a.username);
                matches!(request(&self.server, "DELETE", &path, self.auth(), None).await, Ok(r) if r.status == 200 || r.status == 204)
            })
            .buffer_unordered(SETUP_CONCURRENCY)
            .filter(|deleted| std::future::ready(!deleted))
            .count()
            .await
    }

    /// The server's `/metrics` as (name with labels, value) pairs.
    pub async fn metrics(&self) -> Result<Vec<(String, f64)>, BenchError> {
        let answer = request(&self.server, "GET", "/metrics", self.auth(), None).await?;
        if answer.status != 200 {
            return Err(BenchError::Server(format!("GET /metrics answered {}", answer.status)));
        }
        Ok(answer
            .text()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' ').and_then(|(k, v)| Some((k.to_owned(), v.parse().ok()?))))
            .collect())
    }
}

/// A JWT for each account (`POST /restapi/v1/auth/token`), so that connections
/// authenticate without a password hash each.
pub async fn tokens(server: &Target, accounts: &[Account]) -> Result<Vec<String>, BenchError> {
    stream::iter(accounts)
        .map(|a| async move {
            let body = json!({ "username": a.username, "password": a.password });
            let answer = request(server, "POST", "/restapi/v1/auth/token", Auth::None, Some(&body)).await?;
            if answer.status != 200 {
                return Err(BenchError::Refused(format!(
                    "the server refused a login for {} ({}): {}",
                    a.username,
                    answer.status,
                    answer.text()
                )));
            }
            answer.json()?["token"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| BenchError::Server("the token answer has no \"token\"".into()))
        })
        .buffered(SETUP_CONCURRENCY)
        .try_collect()
        .await
}

/// Reads `user:password` lines (blank lines and `#` comments skipped).
pub fn read_users_file(path: &std::path::Path, needed: usize) -> Result<Vec<Account>, BenchError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| BenchError::Usage(format!("cannot read --users-file {}: {e}", path.display())))?;
    let accounts: Vec<Account> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            l.split_once(':')
                .map(|(u, p)| Account { username: u.to_owned(), password: p.to_owned() })
                .ok_or_else(|| BenchError::Usage(format!("--users-file: '{l}' is not user:password")))
        })
        .collect::<Result<_, _>>()?;
    if accounts.len() < needed {
        return Err(BenchError::Usage(format!(
            "--users-file has {} accounts; this run needs {needed}",
            accounts.len()
        )));
    }
    Ok(accounts.into_iter().take(needed).collect())
}

/// The server process, read from `/proc/PID` (Linux).
#[derive(Clone, Copy)]
pub struct Process {
    pub pid: u32,
}

/// One reading of a process: CPU time used so far and resident memory.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
}

impl Process {
    pub fn sample(&self) -> Result<Sample, BenchError> {
        read_sample(&format!("/proc/{}", self.pid))
            .ok_or_else(|| BenchError::Usage(format!("cannot read /proc/{}: no such process?", self.pid)))
    }

    /// The process's open-file limit (soft), from `/proc/PID/limits`.
    pub fn open_files_limit(&self) -> Option<u64> {
        let limits = std::fs::read_to_string(format!("/proc/{}/limits", self.pid)).ok()?;
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        line.split_whitespace().nth(3)?.parse().ok()
    }
}

/// This process (the bench itself): its own CPU and memory, to show what the client cost.
pub fn own_sample() -> Sample {
    read_sample("/proc/self").unwrap_or_default()
}

fn read_sample(dir: &str) -> Option<Sample> {
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let statm = std::fs::read_to_string(format!("{dir}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(Sample { cpu_seconds: ticks / clock_ticks(), resident_bytes: pages * page_size() })
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as u64
    } else {
        4096
    }
}

/// Kernel memory held by TCP sockets machine-wide (`/proc/net/sockstat`, both ends of
/// every loopback connection), in bytes.
pub fn tcp_kernel_bytes() -> Option<u64> {
    let sockstat = std::fs::read_to_string("/proc/net/sockstat").ok()?;
    let line = sockstat.lines().find(|l| l.starts_with("TCP:"))?;
    let mut words = line.split_whitespace();
    while let Some(word) = words.next() {
        if word == "mem" {
            return Some(words.next()?.parse::<u64>().ok()? * page_size());
        }
    }
    None
}

/// Raises this process's open-file limit to its hard limit; returns the new soft limit.
pub fn raise_own_fd_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit write to and read from a valid rlimit struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur;
            }
        }
    }
    limit.rlim_cur
}
