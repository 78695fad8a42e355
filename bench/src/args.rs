//! The command line: which scenario, against which server, how big and for how long.
//!
//! clap parses the words (subcommands, flags, numbers); [`parse`] then checks the rules
//! clap cannot say (ranges, who creates the accounts, loopback only), naming the flag.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::target::Target;
use crate::BenchError;

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub enum Scenario {
    Idle {
        conns: usize,
        per_user: usize,
        /// How long every connection is held once all are open.
        hold: Duration,
    },
    Pairs {
        pairs: usize,
        messages: usize,
        receivers: Receivers,
    },
    Room {
        occupants: usize,
        senders: usize,
        messages: usize,
    },
    /// HTTP API users sending through the Ozeki 10 HTTP API, `batch` messages a request.
    Ozeki {
        senders: usize,
        messages: usize,
        batch: usize,
    },
    /// Users writing to an external app, delivered to a webhook the bench receives.
    Webhooks {
        senders: usize,
        messages: usize,
    },
    /// N sign-ins at once.
    Login {
        logins: usize,
    },
    /// N signed-in XMPP clients dropped at once, then reconnecting at once, with messages
    /// sent to them while they were away and while they come back.
    Storm {
        clients: usize,
    },
}

/// How pair receivers listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receivers {
    Websocket,
    Sse,
}

/// The protocol every client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Switchboard's JSON websocket (`/ws`) and SSE.
    Json,
    /// XMPP over WebSocket.
    Xmpp,
}

/// Where XMPP accounts come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Accounts {
    /// Created (and removed) through Switchboard's admin API.
    AdminApi,
    /// `user:password` lines.
    File(PathBuf),
    /// XEP-0077 in-band registration.
    Register,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    ScramSha1,
}

#[derive(Debug, Clone, PartialEq)]
pub struct XmppOptions {
    pub url: Target,
    pub domain: String,
    pub muc_service: String,
    pub mechanism: Option<Mechanism>,
    pub accounts: Accounts,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub scenario: Scenario,
    pub protocol: Protocol,
    /// The first server (the admin API, and senders).
    pub server: Target,
    /// Every server given (nodes of one cluster): scenarios spread their clients over them.
    pub servers: Vec<Target>,
    pub admin_password: Option<String>,
    /// The first server's process.
    pub server_pid: Option<u32>,
    /// Every server process given, in the order of `servers`.
    pub server_pids: Vec<u32>,
    pub duration: Duration,
    /// Offered load in messages (or logins, for `idle`) per second; none = as fast as it goes.
    pub rate: Option<f64>,
    pub window: usize,
    pub json: Option<PathBuf>,
    pub xmpp: XmppOptions,
}

/// Upper bounds: the tool is bounded in count as in time.
const MAX_CONNS: usize = 1_000_000;
const MAX_MESSAGES: usize = 10_000_000;

/// switchboard-bench: load a Switchboard (or any RFC 7395 XMPP) server over loopback and
/// report figures.
#[derive(Parser, Debug)]
#[command(name = "switchboard-bench", about, long_about = None, disable_help_subcommand = true)]
struct Cli {
    #[command(subcommand)]
    scenario: Command,
    #[command(flatten)]
    common: Common,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Hold N authenticated /ws connections.
    Idle(IdleArgs),
    /// N sign-ins over /ws with tokens: logins/s and server CPU per login.
    Login(LoginArgs),
    /// P sender→receiver pairs over /ws.
    Pairs(PairsArgs),
    /// Pairs with receivers on SSE.
    Sse(PairsArgs),
    /// One room over /ws.
    Room(RoomArgs),
    /// HTTP API users send through the Ozeki 10 HTTP API (`POST /api?action=sendmsg`) to
    /// receivers on /ws.
    Ozeki(OzekiArgs),
    /// Users on /ws write to an external app; its webhook is a receiver the bench runs.
    Webhooks(WebhookArgs),
    /// (`xmpp storm`, after its clients were counted.)
    #[command(skip)]
    Storm { clients: usize },
    /// Every client on XMPP over WebSocket (RFC 7395) or TCP (`--xmpp-url tcp://…`):
    /// `xmpp pairs`, `room`, `login`, `idle` or `storm`.
    Xmpp {
        #[command(subcommand)]
        shape: XmppShape,
        #[command(flatten)]
        xmpp: XmppArgs,
    },
}

#[derive(Subcommand, Debug)]
enum XmppShape {
    /// P sender→receiver pairs.
    Pairs(PairsArgs),
    /// One room.
    Room(RoomArgs),
    /// N sign-ins (stream, SASL, bind): logins/s and server CPU per login.
    Login(LoginArgs),
    /// Hold N signed-in XMPP sessions: memory per session.
    Idle(IdleArgs),
    /// A reconnect storm: N clients drop at once and all reconnect at once; time until all
    /// are signed in, and whether every message sent to them meanwhile arrived once.
    Storm(StormArgs),
}

#[derive(Args, Debug)]
struct StormArgs {
    /// Clients (one account each).
    #[arg(long)]
    clients: usize,
}

#[derive(Args, Debug)]
struct LoginArgs {
    /// Sign-ins (one account each).
    #[arg(long)]
    logins: usize,
}

#[derive(Args, Debug)]
struct IdleArgs {
    /// Connections to hold.
    #[arg(long)]
    conns: usize,
    /// Connections per account.
    #[arg(long, default_value_t = 50)]
    per_user: usize,
    /// Seconds to hold every connection once all are open.
    #[arg(long, default_value_t = 2.0, value_parser = positive, allow_hyphen_values = true)]
    hold: f64,
}

#[derive(Args, Debug)]
struct PairsArgs {
    /// Sender→receiver pairs.
    #[arg(long)]
    pairs: usize,
    /// Messages each sender sends.
    #[arg(long)]
    messages: usize,
}

#[derive(Args, Debug)]
struct RoomArgs {
    /// Occupants of the room.
    #[arg(long)]
    occupants: usize,
    /// How many occupants send.
    #[arg(long, default_value_t = 1)]
    senders: usize,
    /// Messages each sender sends.
    #[arg(long)]
    messages: usize,
}

#[derive(Args, Debug)]
struct OzekiArgs {
    /// HTTP API users, each with its own receiver on /ws.
    #[arg(long)]
    senders: usize,
    /// Messages each HTTP API user sends.
    #[arg(long)]
    messages: usize,
    /// Messages per request (the server takes at most ozeki.max_messages_per_request).
    #[arg(long, default_value_t = 10)]
    batch: usize,
}

#[derive(Args, Debug)]
struct WebhookArgs {
    /// Users writing to the app.
    #[arg(long)]
    senders: usize,
    /// Messages each user sends.
    #[arg(long)]
    messages: usize,
}

#[derive(Args, Debug)]
struct Common {
    /// Switchboard's HTTP address; loopback only. Repeat it (or give a comma-separated list)
    /// for the nodes of a cluster: clients are spread over them.
    #[arg(long, global = true, value_name = "URL", default_value = "http://127.0.0.1:7070", value_delimiter = ',')]
    server: Vec<String>,
    /// Creates and removes the bench's users (default: $SWITCHBOARD_ADMIN_PASSWORD).
    #[arg(long, global = true, value_name = "PW")]
    admin_password: Option<String>,
    /// Read the server's memory and CPU from /proc/PID (repeat it, or a comma-separated list,
    /// for the nodes, in the order of --server).
    #[arg(long, global = true, value_name = "PID", value_delimiter = ',')]
    server_pid: Vec<u32>,
    /// Bound on the measured phase, in seconds.
    #[arg(long, global = true, value_name = "SECS", default_value_t = 60.0, value_parser = positive, allow_hyphen_values = true)]
    duration: f64,
    /// Offered load in messages (or logins, for idle) per second; none = as fast as it goes.
    #[arg(long, global = true, value_name = "R", value_parser = positive, allow_hyphen_values = true)]
    rate: Option<f64>,
    /// Messages in flight per sender when finding the ceiling.
    #[arg(long, global = true, value_name = "W", default_value_t = 32)]
    window: usize,
    /// Also write the figures as JSON.
    #[arg(long, global = true, value_name = "FILE")]
    json: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct XmppArgs {
    /// ws://host:port/path (default: the server's /xmpp-websocket).
    #[arg(long, global = true, value_name = "URL")]
    xmpp_url: Option<String>,
    /// The XMPP domain.
    #[arg(long, global = true, default_value = "localhost")]
    domain: String,
    /// The MUC service (default conference.<domain>).
    #[arg(long, global = true)]
    muc_service: Option<String>,
    /// PLAIN or SCRAM-SHA-1 (default: SCRAM-SHA-1 when offered, else PLAIN).
    #[arg(long, global = true, value_name = "M")]
    mechanism: Option<String>,
    /// Accounts as user:password lines (any server).
    #[arg(long, global = true, value_name = "FILE", conflicts_with = "register")]
    users_file: Option<PathBuf>,
    /// Create accounts in-band with XEP-0077 (ejabberd, Prosody). Without it or
    /// --users-file, accounts are created through Switchboard's admin API.
    #[arg(long, global = true)]
    register: bool,
}

/// A positive number of seconds or a rate, at most 1e9.
fn positive(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 1e9 => Ok(v),
        _ => Err(format!("takes a positive number, not '{value}'")),
    }
}

/// Parses the arguments after the program name. `env_password` is
/// `$SWITCHBOARD_ADMIN_PASSWORD`, passed in so that parsing stays a pure function.
pub fn parse(args: &[String], env_password: Option<String>) -> Result<Options, BenchError> {
    let words = std::iter::once("switchboard-bench").chain(args.iter().map(String::as_str));
    let cli = Cli::try_parse_from(words).map_err(|e| match e.kind() {
        clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => BenchError::Help(e.to_string()),
        _ => BenchError::Usage(e.to_string().trim_end().to_owned()),
    })?;
    let (protocol, shape, xmpp) = match cli.scenario {
        Command::Xmpp { shape: XmppShape::Pairs(pairs), xmpp } => (Protocol::Xmpp, Command::Pairs(pairs), Some(xmpp)),
        Command::Xmpp { shape: XmppShape::Room(room), xmpp } => (Protocol::Xmpp, Command::Room(room), Some(xmpp)),
        Command::Xmpp { shape: XmppShape::Login(login), xmpp } => (Protocol::Xmpp, Command::Login(login), Some(xmpp)),
        Command::Xmpp { shape: XmppShape::Idle(idle), xmpp } => (Protocol::Xmpp, Command::Idle(idle), Some(xmpp)),
        Command::Xmpp { shape: XmppShape::Storm(storm), xmpp } => {
            let clients = within("--clients", storm.clients, 1, MAX_CONNS)?;
            (Protocol::Xmpp, Command::Storm { clients }, Some(xmpp))
        }
        json => (Protocol::Json, json, None),
    };
    let scenario = match shape {
        Command::Idle(idle) => Scenario::Idle {
            conns: within("--conns", idle.conns, 1, MAX_CONNS)?,
            per_user: idle.per_user.clamp(1, 10_000),
            hold: Duration::from_secs_f64(idle.hold),
        },
        Command::Login(login) => Scenario::Login { logins: within("--logins", login.logins, 1, MAX_CONNS)? },
        Command::Pairs(p) => pairs(p, Receivers::Websocket)?,
        Command::Sse(p) => pairs(p, Receivers::Sse)?,
        Command::Room(room) => {
            let occupants = within("--occupants", room.occupants, 1, MAX_CONNS)?;
            if room.senders == 0 || room.senders > occupants {
                return Err(usage(&format!("--senders must be 1 to --occupants ({occupants}), not {}", room.senders)));
            }
            let messages = within("--messages", room.messages, 1, MAX_MESSAGES)?;
            Scenario::Room { occupants, senders: room.senders, messages }
        }
        Command::Ozeki(o) => Scenario::Ozeki {
            senders: within("--senders", o.senders, 1, MAX_CONNS / 2)?,
            messages: within("--messages", o.messages, 1, MAX_MESSAGES)?,
            batch: within("--batch", o.batch, 1, 100)?,
        },
        Command::Webhooks(w) => Scenario::Webhooks {
            senders: within("--senders", w.senders, 1, MAX_CONNS / 2)?,
            messages: within("--messages", w.messages, 1, MAX_MESSAGES)?,
        },
        Command::Storm { clients } => Scenario::Storm { clients },
        Command::Xmpp { .. } => unreachable!("xmpp scenarios were unwrapped above"),
    };
    let messages_in_run = match &scenario {
        Scenario::Pairs { pairs, messages, .. } => pairs.saturating_mul(*messages),
        Scenario::Room { senders, messages, .. } => senders.saturating_mul(*messages),
        Scenario::Ozeki { senders, messages, .. } | Scenario::Webhooks { senders, messages } => {
            senders.saturating_mul(*messages)
        }
        Scenario::Storm { clients } => clients.saturating_mul(2),
        Scenario::Idle { .. } | Scenario::Login { .. } => 0,
    };
    if messages_in_run > MAX_MESSAGES {
        return Err(usage(&format!("at most {MAX_MESSAGES} messages in one run")));
    }
    let common = cli.common;
    let servers = common.server.iter().map(|url| Target::parse(url, "--server")).collect::<Result<Vec<_>, _>>()?;
    let server = servers.first().cloned().ok_or_else(|| usage("--server needs a URL"))?;
    if !common.server_pid.is_empty() && common.server_pid.len() != servers.len() {
        return Err(usage("give one --server-pid per --server, in the same order"));
    }
    let xmpp = xmpp.unwrap_or(XmppArgs {
        xmpp_url: None,
        domain: "localhost".into(),
        muc_service: None,
        mechanism: None,
        users_file: None,
        register: false,
    });
    let accounts = match (xmpp.register, xmpp.users_file) {
        (true, _) => Accounts::Register,
        (false, Some(file)) => Accounts::File(file),
        (false, None) => Accounts::AdminApi,
    };
    let admin_password = common.admin_password.or(env_password).filter(|p| !p.is_empty());
    if accounts == Accounts::AdminApi && admin_password.is_none() {
        return Err(usage(
            "the bench creates its own users: pass --admin-password or set SWITCHBOARD_ADMIN_PASSWORD \
             (for another XMPP server, --users-file or --register)",
        ));
    }
    let url = match xmpp.xmpp_url {
        Some(url) => Target::parse(&url, "--xmpp-url")?,
        None => server.with_path("/xmpp-websocket"),
    };
    let mechanism = match xmpp.mechanism.as_deref().map(str::to_ascii_uppercase).as_deref() {
        None => None,
        Some("PLAIN") => Some(Mechanism::Plain),
        Some("SCRAM-SHA-1") => Some(Mechanism::ScramSha1),
        Some(other) => return Err(usage(&format!("--mechanism is PLAIN or SCRAM-SHA-1, not '{other}'"))),
    };
    if common.window == 0 || common.window > 100_000 {
        return Err(usage("--window must be 1 to 100000"));
    }
    let domain = xmpp.domain;
    Ok(Options {
        scenario,
        protocol,
        server,
        admin_password,
        server_pid: common.server_pid.first().copied(),
        server_pids: common.server_pid,
        servers,
        duration: Duration::from_secs_f64(common.duration),
        rate: common.rate,
        window: common.window,
        json: common.json,
        xmpp: XmppOptions {
            url,
            muc_service: xmpp.muc_service.unwrap_or_else(|| format!("conference.{domain}")),
            domain,
            mechanism,
            accounts,
        },
    })
}

fn pairs(args: PairsArgs, receivers: Receivers) -> Result<Scenario, BenchError> {
    Ok(Scenario::Pairs {
        pairs: within("--pairs", args.pairs, 1, MAX_CONNS / 2)?,
        messages: within("--messages", args.messages, 1, MAX_MESSAGES)?,
        receivers,
    })
}

fn within(flag: &str, value: usize, min: usize, max: usize) -> Result<usize, BenchError> {
    if value < min || value > max {
        return Err(usage(&format!("{flag} must be {min} to {max}, not {value}")));
    }
    Ok(value)
}

fn usage(problem: &str) -> BenchError {
    BenchError::Usage(problem.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(line: &str) -> Result<Options, BenchError> {
        let args: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        parse(&args, None)
    }

    #[test]
    fn several_servers_are_the_nodes_of_a_cluster_with_a_pid_each() {
        let o = parse_words(
            "idle --conns 6 --hold 30 --admin-password pw --server http://127.0.0.1:7001,http://127.0.0.1:7002 \
             --server http://127.0.0.1:7003 --server-pid 1,2 --server-pid 3",
        )
        .unwrap();
        let ports: Vec<u16> = o.servers.iter().map(|s| s.port).collect();
        assert_eq!((ports, o.server.port, o.server_pids), (vec![7001, 7002, 7003], 7001, vec![1, 2, 3]));
        assert_eq!(o.scenario, Scenario::Idle { conns: 6, per_user: 50, hold: Duration::from_secs(30) });
        let two_one =
            "idle --conns 6 --admin-password pw --server http://127.0.0.1:1,http://127.0.0.1:2 --server-pid 1";
        assert!(refusal(two_one).contains("one --server-pid per --server"));
    }

    fn refusal(line: &str) -> String {
        match parse_words(line) {
            Err(BenchError::Usage(problem)) => problem,
            other => panic!("expected a usage error for '{line}', got {other:?}"),
        }
    }

    #[test]
    fn every_scenario_parses_with_its_defaults() {
        let o = parse_words("pairs --pairs 10 --messages 100 --admin-password pw").unwrap();
        assert_eq!(o.scenario, Scenario::Pairs { pairs: 10, messages: 100, receivers: Receivers::Websocket });
        assert_eq!((o.server.host.as_str(), o.server.port), ("127.0.0.1", 7070));
        assert_eq!((o.duration, o.rate, o.window, o.protocol), (Duration::from_secs(60), None, 32, Protocol::Json));
        assert_eq!(o.xmpp.url.path, "/xmpp-websocket");

        let o = parse_words("sse --pairs 2 --messages 5 --rate 1000 --admin-password pw --json out.json").unwrap();
        assert_eq!(o.scenario, Scenario::Pairs { pairs: 2, messages: 5, receivers: Receivers::Sse });
        assert_eq!((o.rate, o.json), (Some(1000.0), Some(PathBuf::from("out.json"))));

        let o = parse_words("idle --conns 500 --admin-password pw --server-pid 42").unwrap();
        let idle = Scenario::Idle { conns: 500, per_user: 50, hold: Duration::from_secs(2) };
        assert_eq!((o.scenario, o.server_pid), (idle, Some(42)));

        let o = parse_words("room --occupants 100 --senders 4 --messages 50 --admin-password pw").unwrap();
        assert_eq!(o.scenario, Scenario::Room { occupants: 100, senders: 4, messages: 50 });
    }

    #[test]
    fn xmpp_runs_against_other_servers_without_an_admin() {
        let o = parse_words(
            "xmpp room --occupants 3 --messages 2 --xmpp-url ws://localhost:5280/xmpp-websocket \
             --domain example.net --register --mechanism scram-sha-1",
        )
        .unwrap();
        assert_eq!(o.protocol, Protocol::Xmpp);
        assert_eq!(o.xmpp.accounts, Accounts::Register);
        assert_eq!((o.xmpp.url.port, o.xmpp.url.path.as_str()), (5280, "/xmpp-websocket"));
        assert_eq!((o.xmpp.domain.as_str(), o.xmpp.muc_service.as_str()), ("example.net", "conference.example.net"));
        assert_eq!(o.xmpp.mechanism, Some(Mechanism::ScramSha1));
        let o = parse_words("xmpp storm --clients 10000 --xmpp-url tcp://127.0.0.1:5222 --register").unwrap();
        assert_eq!((o.scenario, o.xmpp.url.tcp), (Scenario::Storm { clients: 10_000 }, true));
        let o = parse_words("xmpp idle --conns 300 --per-user 1 --register").unwrap();
        let idle = Scenario::Idle { conns: 300, per_user: 1, hold: Duration::from_secs(2) };
        assert_eq!((o.scenario, o.protocol), (idle, Protocol::Xmpp));
        let o = parse_words("xmpp pairs --pairs 1 --messages 1 --users-file u.txt").unwrap();
        assert_eq!(o.xmpp.accounts, Accounts::File("u.txt".into()));
    }

    #[test]
    fn the_admin_password_may_come_from_the_environment() {
        let args: Vec<String> = ["pairs", "--pairs", "1", "--messages", "1"].map(String::from).to_vec();
        assert_eq!(parse(&args, Some("secret".into())).unwrap().admin_password.as_deref(), Some("secret"));
        let args: Vec<String> =
            ["pairs", "--pairs", "1", "--messages", "1", "--admin-password", "flag"].map(String::from).to_vec();
        assert_eq!(parse(&args, Some("env".into())).unwrap().admin_password.as_deref(), Some("flag"));
        assert!(refusal("pairs --pairs 1 --messages 1").contains("SWITCHBOARD_ADMIN_PASSWORD"));
    }

    #[test]
    fn bad_arguments_are_refused_with_the_rule() {
        assert!(refusal("").contains("Usage:"), "no scenario: the usage");
        assert!(refusal("flood").contains("unrecognized subcommand 'flood'"));
        assert!(refusal("xmpp").contains("pairs"));
        assert!(refusal("xmpp flood").contains("unrecognized subcommand 'flood'"));
        assert!(refusal("storm --clients 5").contains("unrecognized subcommand 'storm'"), "storm is XMPP's");
        assert!(refusal("xmpp storm --clients 0 --register").contains("--clients must be 1"));
        assert!(refusal("pairs --messages 5 --admin-password pw").contains("--pairs"));
        assert!(refusal("pairs --pairs 0 --messages 5 --admin-password pw").contains("--pairs must be 1"));
        assert!(refusal("pairs --pairs ten --messages 5").contains("invalid value 'ten' for '--pairs"));
        assert!(refusal("pairs --pairs 1 --messages 5 --rate -3").contains("positive number"));
        assert!(refusal("pairs --pairs 1 --messages 5 --duration 0").contains("positive number"));
        assert!(refusal("pairs --pairs 1 --messages").contains("a value is required for '--messages"));
        assert!(refusal("pairs --pairs 1 --messages 1 --colour red").contains("unexpected argument '--colour'"));
        assert!(refusal("room --occupants 3 --senders 4 --messages 1 --admin-password pw").contains("--senders"));
        assert!(refusal("pairs --pairs 1000 --messages 100000 --admin-password pw").contains("at most"));
        assert!(refusal("pairs --pairs 1 --messages 1 --register").contains("unexpected argument '--register'"));
        assert!(refusal("xmpp pairs --pairs 1 --messages 1 --register --users-file f").contains("cannot be used with"));
        assert!(refusal("xmpp pairs --pairs 1 --messages 1 --register --mechanism MD5").contains("MD5"));
        assert!(refusal("idle --conns 5 --admin-password pw --window 0").contains("--window"));
        assert!(matches!(parse_words("--help"), Err(BenchError::Help(_))));
        assert!(matches!(parse_words("xmpp room --help"), Err(BenchError::Help(_))));
    }

    #[test]
    fn only_loopback_servers_are_loaded() {
        assert!(refusal("pairs --pairs 1 --messages 1 --admin-password pw --server http://192.0.2.7:7070")
            .contains("loopback"));
        assert!(
            refusal("pairs --pairs 1 --messages 1 --admin-password pw --server https://127.0.0.1").contains("http://")
        );
        let o = parse_words("pairs --pairs 1 --messages 1 --admin-password pw --server http://localhost:8080").unwrap();
        assert!(o.server.addr.ip().is_loopback());
        let o = parse_words("idle --conns 1 --admin-password pw --server http://127.0.0.2:9000/").unwrap();
        assert_eq!(o.server.addr.to_string(), "127.0.0.2:9000");
    }
}
