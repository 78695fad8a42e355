//! Test support shared by the core's tests and the black-box suite (feature `testing`): a
//! PostgreSQL server of the tests' own, started on first use from the machine's binaries
//! (`initdb`, `postgres`) on a free loopback port with a temporary data directory, with a
//! fresh database per test; and NATS servers ([`TestNats`]), one per test that needs one,
//! which the test may stop and start again.
//!
//! One server serves every test of a test binary; it is stopped when the binary exits (it
//! gets SIGINT when the thread that started it, which never ends, goes with the process).
//! Data directories of servers whose test binary is gone are removed at the next start.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The tests' PostgreSQL server.
pub struct TestPostgres {
    port: u16,
    databases: AtomicU32,
}

/// What the tests say when PostgreSQL is not there.
const MISSING: &str = "PostgreSQL's server binaries (initdb, postgres) were not found: install them \
    (Debian: `apt-get install postgresql-15`) or set SWITCHBOARD_TEST_PG_BIN to their directory";

impl TestPostgres {
    /// The server, started by the first caller. Panics, saying what is missing, when the
    /// machine has no PostgreSQL.
    pub fn shared() -> &'static TestPostgres {
        static SERVER: OnceLock<TestPostgres> = OnceLock::new();
        SERVER.get_or_init(|| TestPostgres::start().unwrap_or_else(|e| panic!("the tests' PostgreSQL: {e}")))
    }

    /// A new, empty database on the server: its URL.
    pub fn database(&self) -> String {
        let n = self.databases.fetch_add(1, Ordering::Relaxed);
        let name = format!("t{}_{n}", std::process::id());
        let admin = self.url("postgres");
        let url = self.url(&name);
        // The blocking client runs a runtime of its own: not on a test's async thread.
        let created = std::thread::spawn(move || -> Result<(), String> {
            let mut client = postgres::Client::connect(&admin, postgres::NoTls).map_err(|e| e.to_string())?;
            client.batch_execute(&format!("CREATE DATABASE {name}")).map_err(|e| e.to_string())
        })
        .join()
        .expect("the database-creating thread ran");
        created.unwrap_or_else(|e| panic!("creating a test database: {e}"));
        url
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://switchboard@127.0.0.1:{}/{database}", self.port)
    }

    fn start() -> Result<TestPostgres, String> {
        let bin = find_binaries().ok_or(MISSING)?;
        let root = std::env::temp_dir().join("switchboard-test-postgres");
        std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
        remove_abandoned(&root);
        let dir = root.join(std::process::id().to_string());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let owner = server_owner();
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let data = dir.join("data");
        let init = run_as(owner, Command::new(bin.join("initdb")))
            .args(["-U", "switchboard", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        if !init.status.success() {
            return Err(format!("initdb failed: {}", String::from_utf8_lossy(&init.stderr)));
        }
        for _ in 0..5 {
            let port = free_port()?;
            if let Ok(server) = TestPostgres::launch(&bin, owner, &dir, &data, port) {
                return Ok(server);
            }
        }
        Err(format!("postgres did not start; its log is in {}", dir.join("log").display()))
    }

    fn launch(bin: &Path, owner: Option<(u32, u32)>, dir: &Path, data: &Path, port: u16) -> Result<TestPostgres, ()> {
        let log = std::fs::File::create(dir.join("log")).map_err(drop)?;
        if let Some((uid, gid)) = owner {
            let _ = std::os::unix::fs::chown(dir.join("log"), Some(uid), Some(gid));
        }
        let mut command = run_as(owner, Command::new(bin.join("postgres")));
        command
            .arg("-D")
            .arg(data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c"])
            .arg(format!("unix_socket_directories={}", dir.display()))
            .args(["-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=400"])
            .args(["-c", "shared_buffers=64MB"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(drop)?)
            .stderr(log);
        // Started by a thread that lives as long as the process, so that the server's
        // parent-death signal comes when the test binary exits.
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let child = command.spawn();
            let ok = child.is_ok();
            let _ = started_tx.send(child.map(|_| ()).map_err(drop));
            if ok {
                loop {
                    std::thread::park();
                }
            }
        });
        started_rx.recv().map_err(drop)??;
        let server = TestPostgres { port, databases: AtomicU32::new(0) };
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = server.url("postgres");
        loop {
            let url = url.clone();
            let ready = std::thread::spawn(move || postgres::Client::connect(&url, postgres::NoTls).is_ok())
                .join()
                .unwrap_or(false);
            if ready {
                return Ok(server);
            }
            if Instant::now() > deadline {
                return Err(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A NATS server of one test's own (`nats-server` on a free loopback port), killed when
/// dropped.
pub struct TestNats {
    port: u16,
    child: Option<std::process::Child>,
}

/// What the tests say when NATS is not there.
const NATS_MISSING: &str = "nats-server was not found: install it (Debian: `apt-get install nats-server`) \
    or set SWITCHBOARD_TEST_NATS_SERVER to its path";

impl TestNats {
    /// A running server. Panics, saying what is missing, when the machine has no nats-server.
    pub fn start() -> TestNats {
        for _ in 0..5 {
            let port = free_port().unwrap_or_else(|e| panic!("the tests' NATS: {e}"));
            let mut server = TestNats { port, child: None };
            if server.launch().is_ok() {
                return server;
            }
        }
        panic!("the tests' NATS server did not start")
    }

    /// `nats://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (an outage); `resume` starts it again on the same port.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again after `kill`.
    pub fn resume(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.launch().is_err() {
            assert!(Instant::now() < deadline, "the tests' NATS server did not start again on port {}", self.port);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn launch(&mut self) -> Result<(), ()> {
        let binary = std::env::var_os("SWITCHBOARD_TEST_NATS_SERVER")
            .map(PathBuf::from)
            .or_else(|| {
                let paths = std::env::var_os("PATH").unwrap_or_default();
                std::env::split_paths(&paths)
                    .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
                    .map(|dir| dir.join("nats-server"))
                    .find(|path| path.is_file())
            })
            .unwrap_or_else(|| panic!("{NATS_MISSING}"));
        let mut child = run_as(None, Command::new(binary))
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(drop)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
                let _ = child.kill();
                let _ = child.wait();
                return Err(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TestNats {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `SWITCHBOARD_TEST_PG_BIN`, the directory of `initdb` on the PATH, or Debian's newest
/// `/usr/lib/postgresql/<version>/bin`.
fn find_binaries() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SWITCHBOARD_TEST_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).find(|dir| dir.join("initdb").is_file() && dir.join("postgres").is_file())
    });
    if on_path.is_some() {
        return on_path;
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user that
/// Debian's package creates (or `nobody`).
fn server_owner() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    for name in ["postgres", "nobody"] {
        let c_name = std::ffi::CString::new(name).expect("no NUL in a user name");
        // SAFETY: a valid C string; the result is read at once, before any other call.
        let entry = unsafe { libc::getpwnam(c_name.as_ptr()) };
        if !entry.is_null() {
            // SAFETY: checked non-null just above.
            let entry = unsafe { &*entry };
            return Some((entry.pw_uid, entry.pw_gid));
        }
    }
    None
}

/// The command, run as `owner` when given, and told to stop when the thread that started
/// it ends.
fn run_as(owner: Option<(u32, u32)>, mut command: Command) -> Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            if let Some((uid, gid)) = owner {
                if libc::setgid(gid) != 0 || libc::setuid(uid) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            // After the user changed: a change of user clears the parent-death signal.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT);
            Ok(())
        });
    }
    command
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// Removes the directories of servers whose test binary (named by the directory) is gone.
fn remove_abandoned(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else { return };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
