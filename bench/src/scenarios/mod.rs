//! The scenarios, and what they share: the run's context (options, accounts, the server
//! process), opening clients of either protocol, and the measured phase in which senders
//! write marked messages and readers time their arrival.

pub mod idle;
pub mod login;
pub mod ozeki;
pub mod pairs;
pub mod room;
pub mod storm;
pub mod webhooks;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt, TryStreamExt};
use futures_util::SinkExt;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::args::{Accounts, Options, Protocol};
use crate::client::{observe_json, observe_xmpp, open_ws, Observed, Outgoing, Ws, WsSink, WsSource};
use crate::http::EventStream;
use crate::report::{Latencies, Report};
use crate::server::{raise_own_fd_limit, read_users_file, tokens, Account, Admin, Process, Sample};
use crate::target::Target;
use crate::BenchError;

/// Clients are opened this many at a time.
pub const CONNECT_CONCURRENCY: usize = 32;

/// Descriptors kept free for everything else the bench opens.
const FD_SPARE: u64 = 64;

/// Checks that the bench (after raising its own soft limit) and each server (when its pid is
/// known; a node holds its share of `conns`) may hold `conns` connections, and says how to
/// raise the limit when not.
pub fn ensure_descriptors(ctx: &Context, conns: usize) -> Result<(), BenchError> {
    let needed = conns as u64 + FD_SPARE;
    let own_limit = raise_own_fd_limit();
    if needed > own_limit {
        return Err(BenchError::Limits(format!(
            "{conns} connections need {needed} file descriptors and the bench may open {own_limit}; raise the \
             hard limit first (as root: `ulimit -Hn {needed}`, or `prlimit --pid $$ --nofile={needed}:{needed}`)"
        )));
    }
    let share = conns.div_ceil(ctx.opts.servers.len()) as u64 + FD_SPARE;
    for pid in &ctx.opts.server_pids {
        let Some(limit) = (Process { pid: *pid }).open_files_limit() else { continue };
        if share > limit {
            return Err(BenchError::Limits(format!(
                "the server {pid} may open {limit} files and its {} connections need {share}; raise it with \
                 `prlimit --pid {pid} --nofile={share}:{share}` (or start it under `ulimit -n {share}`)",
                share - FD_SPARE
            )));
        }
    }
    Ok(())
}

/// One run: its options, the server's admin API (when used) and process, and the accounts
/// it created.
pub struct Context {
    pub opts: Options,
    pub admin: Option<Admin>,
    /// Prefixes this run's account and room names.
    pub run_id: String,
    created: Vec<Account>,
}

impl Context {
    pub async fn new(opts: Options) -> Result<Context, BenchError> {
        let admin = match (&opts.xmpp.accounts, &opts.admin_password) {
            (Accounts::AdminApi, Some(password)) => Some(Admin::connect(&opts.server, password).await?),
            _ => None,
        };
        for pid in &opts.server_pids {
            Process { pid: *pid }.sample()?;
        }
        Ok(Context { opts, admin, run_id: format!("sb{}", crate::random_hex(3)), created: Vec::new() })
    }

    /// `count` accounts, from wherever this run takes them.
    pub async fn accounts(&mut self, count: usize) -> Result<Vec<Account>, BenchError> {
        match self.opts.xmpp.accounts.clone() {
            Accounts::AdminApi => {
                let admin = self.admin.as_ref().ok_or_else(|| BenchError::Usage("no admin password".into()))?;
                let accounts = admin.create_users(&format!("{}u", self.run_id), count).await;
                // Whatever was created is removed at the end, even after a failure.
                if let Ok(accounts) = &accounts {
                    self.created.extend(accounts.iter().cloned());
                }
                accounts
            }
            Accounts::File(path) => read_users_file(&path, count),
            Accounts::Register => {
                let accounts: Vec<Account> = (0..count)
                    .map(|n| Account { username: format!("{}u{n}", self.run_id), password: crate::random_hex(12) })
                    .collect();
                let xmpp = self.opts.xmpp.clone();
                stream::iter(accounts.iter())
                    .map(|account| {
                        let xmpp = xmpp.clone();
                        async move {
                            let (mut stream, _) = crate::xmpp::connect(&xmpp.url, &xmpp.domain, 0).await?;
                            stream.register(account).await
                        }
                    })
                    .buffer_unordered(CONNECT_CONCURRENCY)
                    .try_collect::<Vec<()>>()
                    .await?;
                Ok(accounts)
            }
        }
    }

    /// `count` HTTP API users (Ozeki's service accounts), through the admin API.
    pub async fn http_accounts(&mut self, count: usize) -> Result<Vec<Account>, BenchError> {
        let admin = self.admin.as_ref().ok_or_else(|| BenchError::Usage("no admin password".into()))?;
        let accounts = admin.create_accounts(&format!("{}h", self.run_id), count, "http").await;
        if let Ok(accounts) = &accounts {
            self.created.extend(accounts.iter().cloned());
        }
        accounts
    }

    /// Removes the accounts this run created through the admin API.
    pub async fn cleanup(&mut self, report: &mut Report) {
        if let (Some(admin), false) = (&self.admin, self.created.is_empty()) {
            let failed = admin.delete_users(&self.created).await;
            if failed > 0 {
                report.note(format!("{failed} bench accounts (prefix {}) could not be removed", self.run_id));
            }
            self.created.clear();
        }
    }

    /// Every server's reading, summed (CPU time and resident memory of all the nodes).
    pub fn server_sample(&self) -> Option<Sample> {
        let samples = self.node_samples()?;
        Some(samples.iter().fold(Sample::default(), |sum, s| Sample {
            cpu_seconds: sum.cpu_seconds + s.cpu_seconds,
            resident_bytes: sum.resident_bytes + s.resident_bytes,
        }))
    }

    /// Each server's reading, in the order of `--server` (none without `--server-pid`).
    pub fn node_samples(&self) -> Option<Vec<Sample>> {
        if self.opts.server_pids.is_empty() {
            return None;
        }
        self.opts.server_pids.iter().map(|pid| Process { pid: *pid }.sample().ok()).collect()
    }

    /// The server the `i`th client of a scenario connects to: round robin over `--server`.
    pub fn server_for(&self, i: usize) -> &Target {
        &self.opts.servers[i % self.opts.servers.len()]
    }

    /// An account's bare address (XMPP) or user name (JSON door).
    pub fn address_of(&self, account: &Account) -> String {
        match self.opts.protocol {
            Protocol::Json => account.username.clone(),
            Protocol::Xmpp => format!("{}@{}", account.username, self.opts.xmpp.domain),
        }
    }

    /// Opens one signed-in websocket per account, in order (JSON `/ws` with a token, or XMPP).
    pub async fn open_clients(&self, accounts: &[Account], first_source: usize) -> Result<Vec<Ws>, BenchError> {
        self.open_clients_on(&self.opts.server, accounts, first_source).await
    }

    /// As `open_clients`, the `i`th account on `server_for(i)`: spread over the nodes of a
    /// cluster (JSON door; XMPP clients use `--xmpp-url`).
    pub async fn open_clients_spread(&self, accounts: &[Account], first_source: usize) -> Result<Vec<Ws>, BenchError> {
        if self.opts.servers.len() < 2 || self.opts.protocol != Protocol::Json {
            return self.open_clients(accounts, first_source).await;
        }
        let tokens = tokens(&self.opts.server, accounts).await?;
        stream::iter(tokens.into_iter().enumerate())
            .map(|(i, token)| {
                let server = self.server_for(i).clone();
                async move { open_ws(&server, &format!("/ws?token={token}"), None, first_source + i).await }
            })
            .buffered(CONNECT_CONCURRENCY)
            .try_collect()
            .await
    }

    /// As `open_clients`, on `server` (JSON door; XMPP clients use `--xmpp-url`).
    pub async fn open_clients_on(
        &self,
        server: &Target,
        accounts: &[Account],
        first_source: usize,
    ) -> Result<Vec<Ws>, BenchError> {
        match self.opts.protocol {
            Protocol::Json => {
                let tokens = tokens(&self.opts.server, accounts).await?;
                stream::iter(tokens.into_iter().enumerate())
                    .map(|(i, token)| {
                        let server = server.clone();
                        async move { open_ws(&server, &format!("/ws?token={token}"), None, first_source + i).await }
                    })
                    .buffered(CONNECT_CONCURRENCY)
                    .try_collect()
                    .await
            }
            Protocol::Xmpp => {
                let xmpp = &self.opts.xmpp;
                stream::iter(accounts.iter().enumerate())
                    .map(|(i, account)| async move {
                        let signed_in =
                            crate::xmpp::sign_in(&xmpp.url, &xmpp.domain, account, xmpp.mechanism, first_source + i)
                                .await?;
                        Ok::<Ws, BenchError>(signed_in.ws)
                    })
                    .buffered(CONNECT_CONCURRENCY)
                    .try_collect()
                    .await
            }
        }
    }

    /// The server's CPU per unit of work over a phase (`name`, in µs), and its memory at the
    /// end of the phase.
    pub fn add_server_cost(&self, report: &mut Report, before: Option<Sample>, per: f64, name: &'static str) {
        if let (Some(before), Some(after)) = (before, self.server_sample()) {
            let cpu = after.cpu_seconds - before.cpu_seconds;
            if per > 0.0 {
                report.figure(name, cpu * 1e6 / per, "µs");
            }
            report.set_figure("server_resident_memory", after.resident_bytes as f64 / 1048576.0, "MiB");
        } else if !report.notes.iter().any(|n| n.contains("--server-pid")) {
            report.note("pass --server-pid PID for the server's CPU and memory");
        }
    }

    /// Waits (at most a second) for acknowledgements that trail the last delivery.
    pub async fn await_acks(&self, shared: &Shared, sent: u64) -> u64 {
        if self.opts.protocol == Protocol::Json {
            for _ in 0..50 {
                if shared.acked.load(Ordering::Relaxed) >= sent {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        shared.acked.load(Ordering::Relaxed)
    }
}

/// What a reader reads from.
pub enum Source {
    Ws(WsSource, Protocol),
    Sse(EventStream),
}

impl Source {
    /// The next frame's meaning; `None` when the connection ended.
    async fn next(&mut self) -> Option<Observed> {
        match self {
            Source::Ws(ws, protocol) => loop {
                match ws.next().await? {
                    Ok(Message::Text(text)) => {
                        return Some(match protocol {
                            Protocol::Json => observe_json(text.as_str()),
                            Protocol::Xmpp => observe_xmpp(text.as_str()),
                        })
                    }
                    Ok(Message::Close(_)) | Err(_) => return None,
                    Ok(_) => continue,
                }
            },
            Source::Sse(events) => match events.next().await {
                Ok(Some(event)) => Some(observe_json(&event.data)),
                _ => None,
            },
        }
    }
}

/// When a sender may send again.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// When its receiver got one of its messages (1:1).
    Receiver,
    /// When its own copy came back from the room.
    OwnEcho,
}

/// Counters every reader updates.
pub struct Shared {
    epoch: Instant,
    expected: u64,
    delivered: AtomicU64,
    acked: AtomicU64,
    refused: AtomicU64,
    joined: AtomicU64,
    presences: AtomicU64,
    last_delivery_ns: AtomicU64,
    last_join_ns: AtomicU64,
    first_error: Mutex<Option<String>>,
    all_delivered: Notify,
    joins_wanted: AtomicU64,
    all_joined: Notify,
    windows: Vec<Arc<Semaphore>>,
    flow: Flow,
}

impl Shared {
    /// `senders` windows of `window` messages each.
    pub fn new(expected: u64, senders: usize, window: usize, flow: Flow) -> Arc<Shared> {
        Arc::new(Shared {
            epoch: Instant::now(),
            expected,
            delivered: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            joined: AtomicU64::new(0),
            presences: AtomicU64::new(0),
            last_delivery_ns: AtomicU64::new(0),
            last_join_ns: AtomicU64::new(0),
            first_error: Mutex::new(None),
            all_delivered: Notify::new(),
            joins_wanted: AtomicU64::new(u64::MAX),
            all_joined: Notify::new(),
            windows: (0..senders).map(|_| Arc::new(Semaphore::new(window))).collect(),
            flow,
        })
    }

    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    pub fn presences(&self) -> u64 {
        self.presences.load(Ordering::Relaxed)
    }

    fn observe(&self, seen: Observed, own: Option<usize>, latencies: &mut Latencies) {
        match seen {
            Observed::Delivered { sender, sent_ns } => {
                let now = self.now_ns();
                latencies.record(now.saturating_sub(sent_ns) / 1000);
                if self.flow == Flow::Receiver || own == Some(sender) {
                    if let Some(window) = self.windows.get(sender) {
                        window.add_permits(1);
                    }
                }
                self.last_delivery_ns.fetch_max(now, Ordering::Relaxed);
                if self.delivered.fetch_add(1, Ordering::AcqRel) + 1 == self.expected {
                    self.all_delivered.notify_one();
                }
            }
            Observed::Acked => {
                self.acked.fetch_add(1, Ordering::Relaxed);
            }
            Observed::Joined => {
                self.last_join_ns.fetch_max(self.now_ns(), Ordering::Relaxed);
                if self.joined.fetch_add(1, Ordering::AcqRel) + 1 == self.joins_wanted.load(Ordering::Acquire) {
                    self.all_joined.notify_one();
                }
            }
            Observed::Presence => {
                self.presences.fetch_add(1, Ordering::Relaxed);
            }
            Observed::Refused(message) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                self.first_error.lock().expect("error slot").get_or_insert(message);
            }
            Observed::Other => {}
        }
    }

    /// Waits until every expected delivery arrived, or `deadline`; whether they all did.
    pub async fn wait_delivered(&self, deadline: tokio::time::Instant) -> bool {
        self.delivered.load(Ordering::Acquire) >= self.expected
            || tokio::time::timeout_at(deadline, self.all_delivered.notified()).await.is_ok()
    }

    /// A measured phase's outcome, from its counters: `sent` messages since `start` (at
    /// `start_ns` on this clock), timed to the last delivery.
    pub fn outcome(&self, sent: u64, start_ns: u64, start: Instant, complete: bool) -> Outcome {
        let last = self.last_delivery_ns.load(Ordering::Relaxed);
        let elapsed = if last > start_ns { Duration::from_nanos(last - start_ns) } else { start.elapsed() };
        Outcome {
            sent,
            delivered: self.delivered.load(Ordering::Relaxed),
            acked: self.acked.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            first_error: self.first_error.lock().expect("error slot").clone(),
            elapsed,
            complete,
        }
    }

    /// Expects `count` more join answers from now on (call before sending the joins).
    pub fn expect_joins(&self, count: u64) {
        let target = self.joined.load(Ordering::Acquire) + count;
        self.joins_wanted.store(target, Ordering::Release);
    }

    /// Waits until the expected joins were answered (or `limit` passed); returns the time
    /// from `since_ns` to the last answer, or `None` on time-out.
    pub async fn joins(&self, since_ns: u64, limit: Duration) -> Option<Duration> {
        let target = self.joins_wanted.load(Ordering::Acquire);
        let notified = self.all_joined.notified();
        if self.joined.load(Ordering::Acquire) < target && tokio::time::timeout(limit, notified).await.is_err() {
            return None;
        }
        Some(Duration::from_nanos(self.last_join_ns.load(Ordering::Relaxed).saturating_sub(since_ns)))
    }
}

/// Reader tasks and the switch that stops them.
pub struct Readers {
    handles: Vec<JoinHandle<Latencies>>,
    stop: watch::Sender<bool>,
}

/// Starts one reader per source; `own[i]` is the sender index of source `i`'s connection.
pub fn spawn_readers(sources: Vec<(Source, Option<usize>)>, shared: &Arc<Shared>) -> Readers {
    let (stop, stopped) = watch::channel(false);
    let handles = sources
        .into_iter()
        .map(|(mut source, own)| {
            let shared = shared.clone();
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                let mut latencies = Latencies::default();
                loop {
                    tokio::select! {
                        _ = stopped.changed() => break,
                        seen = source.next() => match seen {
                            Some(seen) => shared.observe(seen, own, &mut latencies),
                            None => break,
                        },
                    }
                }
                latencies
            })
        })
        .collect();
    Readers { handles, stop }
}

impl Readers {
    pub async fn stop(self) -> Latencies {
        let _ = self.stop.send(true);
        let mut all = Latencies::default();
        for handle in self.handles {
            if let Ok(latencies) = handle.await {
                all.merge(latencies);
            }
        }
        all
    }
}

/// A sender: its socket and where its messages go.
pub struct Lane {
    pub sink: WsSink,
    pub outgoing: Outgoing,
}

/// The measured phase's outcome.
pub struct Outcome {
    pub sent: u64,
    pub delivered: u64,
    pub acked: u64,
    pub refused: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    pub complete: bool,
}

/// Runs `lanes` (sender `i` is lane `i`) for `messages` each, until every expected delivery
/// arrived or `opts.duration` passed. With `opts.rate` the offered load is paced (open
/// loop, spread evenly over the senders); without it each sender keeps `opts.window`
/// messages in flight.
pub async fn measure(lanes: Vec<Lane>, messages: usize, shared: &Arc<Shared>, opts: &Options) -> (Outcome, Vec<Lane>) {
    let senders = lanes.len();
    let start_ns = shared.now_ns();
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + opts.duration;
    if opts.rate.is_some() {
        // Paced: the window only bounds memory, it does not limit the load.
        for window in &shared.windows {
            window.add_permits(100_000usize.saturating_sub(opts.window));
        }
    }
    let interval = opts.rate.map(|rate| Duration::from_secs_f64(senders as f64 / rate));
    let sent = Arc::new(AtomicU64::new(0));
    let tasks: Vec<JoinHandle<Lane>> = lanes
        .into_iter()
        .enumerate()
        .map(|(index, mut lane)| {
            let shared = shared.clone();
            let sent = sent.clone();
            let window = shared.windows[index].clone();
            let offset = interval.map(|i| i.mul_f64(index as f64 / senders as f64));
            tokio::spawn(async move {
                let begin = tokio::time::Instant::now();
                for seq in 0..messages {
                    if let (Some(interval), Some(offset)) = (interval, offset) {
                        tokio::time::sleep_until(begin + offset + interval.mul_f64(seq as f64)).await;
                    }
                    match tokio::time::timeout_at(deadline, window.acquire()).await {
                        Ok(Ok(permit)) => permit.forget(),
                        _ => break,
                    }
                    let frame = lane.outgoing.frame(index, seq, shared.now_ns());
                    if lane.sink.send(Message::text(frame)).await.is_err() {
                        break;
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                lane
            })
        })
        .collect();
    let complete = shared.wait_delivered(deadline).await;
    let mut lanes = Vec::with_capacity(senders);
    for task in tasks {
        if let Ok(lane) = task.await {
            lanes.push(lane);
        }
    }
    (shared.outcome(sent.load(Ordering::Relaxed), start_ns, start, complete), lanes)
}

/// Adds a measured phase's figures to the report.
pub fn report_outcome(report: &mut Report, outcome: &Outcome, latencies: Latencies, acks_expected: bool) {
    let seconds = outcome.elapsed.as_secs_f64().max(1e-9);
    report.figure("messages_sent", outcome.sent as f64, "");
    if acks_expected {
        report.figure("messages_acked", outcome.acked as f64, "");
    }
    report.figure("deliveries", outcome.delivered as f64, "");
    report.figure("elapsed", seconds, "s");
    report.figure("deliveries_per_second", outcome.delivered as f64 / seconds, "/s");
    report.latencies(latencies.summary());
    if outcome.refused > 0 {
        report.figure("errors", outcome.refused as f64, "");
        if let Some(e) = &outcome.first_error {
            report.note(format!("first error: {e}"));
        }
    }
    report.complete = outcome.complete;
}

/// Closes websockets politely (a close frame each), a few at a time.
pub async fn close_all(sinks: Vec<WsSink>) {
    stream::iter(sinks)
        .for_each_concurrent(256, |mut sink| async move {
            let _ = tokio::time::timeout(Duration::from_secs(2), sink.close()).await;
        })
        .await;
}
