//! The server out of file descriptors: the `switchboard` binary runs under a small
//! `RLIMIT_NOFILE`, more clients connect than it may accept, and it must neither crash nor
//! spin, and must serve again once clients leave.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use switchboard_bench::server::Process;

/// Open files the server may have: its store, listener and runtime take about half.
const FD_LIMIT: u64 = 64;

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_with_fd_limit(data: &std::path::Path) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command
        .args(["--bind", &format!("127.0.0.1:{port}"), "--data"])
        .arg(data)
        .env("SWITCHBOARD_ADMIN_PASSWORD", "limits-test-password")
        .env("SWITCHBOARD_STORE_SYNCHRONOUS", "normal")
        .env("SWITCHBOARD_LOG_LEVEL", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: setrlimit is async-signal-safe and only touches the child's own limits.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit { rlim_cur: FD_LIMIT, rlim_max: FD_LIMIT };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let server = Server { child: command.spawn().expect("the switchboard binary starts"), port };
    let deadline = Instant::now() + Duration::from_secs(20);
    while health(port).is_none() {
        assert!(Instant::now() < deadline, "the server did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

/// `GET /healthz` on a new connection: the status, or `None` when it does not answer in 2 s.
fn health(port: u16) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn out_of_file_descriptors_the_server_backs_off_and_recovers() {
    let data = tempfile::tempdir().unwrap();
    let server = start_with_fd_limit(data.path());
    let process = Process { pid: server.child.id() };

    // Far more connections than the server may accept: the rest wait in the listen backlog.
    let crowd: Vec<TcpStream> = (0..3 * FD_LIMIT)
        .map(|_| {
            let mut stream =
                TcpStream::connect(("127.0.0.1", server.port)).expect("the kernel accepts into the backlog");
            stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let before = process.sample().expect("the server is alive");
    std::thread::sleep(Duration::from_secs(2));
    let after = process.sample().expect("the server is still alive while out of descriptors");
    let cpu = after.cpu_seconds - before.cpu_seconds;
    assert!(cpu < 1.0, "the server spun on accept errors: {cpu:.2} s of CPU in 2 s");

    drop(crowd);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if health(server.port) == Some(200) {
            break;
        }
        assert!(Instant::now() < deadline, "the server did not serve again after the crowd left");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_port_in_use_is_a_clear_error_not_a_panic() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["--bind", &format!("127.0.0.1:{port}"), "--data"])
        .arg(data.path())
        .env("SWITCHBOARD_ADMIN_PASSWORD", "limits-test-password")
        .output()
        .expect("the switchboard binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
