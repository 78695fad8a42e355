//! The command line: which scenario, against which server, how big and for how long.
//!
//! Parsed by hand (a handful of flags) so that every refusal names the flag and the rule.

use std::path::PathBuf;
use std::time::Duration;

use crate::target::Target;
use crate::BenchError;

pub const USAGE: &str = "\
switchboard-bench: load a Switchboard (or any RFC 7395 XMPP) server over loopback and report figures

usage: switchboard-bench <scenario> [options]

scenarios:
  idle  --conns N [--rate R] [--per-user K]        hold N authenticated /ws connections
  pairs --pairs P --messages M [--rate R]           P sender→receiver pairs over /ws
  sse   --pairs P --messages M [--rate R]           pairs with receivers on SSE
  room  --occupants N --senders S --messages M [--rate R]
                                                    one room over /ws
  xmpp pairs|room [the options of pairs or room]    every client on XMPP over WebSocket (RFC 7395)

common options:
  --server URL          Switchboard's HTTP address (default http://127.0.0.1:7070); loopback only
  --admin-password PW   creates and removes the bench's users (default: $SWITCHBOARD_ADMIN_PASSWORD)
  --server-pid PID      read the server's memory and CPU from /proc/PID
  --duration SECS       bound on the measured phase (default 60)
  --window W            messages in flight per sender when finding the ceiling (default 32)
  --json FILE           also write the figures as JSON

xmpp options:
  --xmpp-url URL        ws://host:port/path (default: the server's /xmpp-websocket)
  --domain D            the XMPP domain (default localhost)
  --muc-service S       the MUC service (default conference.<domain>)
  --mechanism M         PLAIN or SCRAM-SHA-1 (default: SCRAM-SHA-1 when offered, else PLAIN)
  --users-file FILE     accounts as user:password lines (any server)
  --register            create accounts in-band with XEP-0077 (ejabberd, Prosody)
  without either, accounts are created through Switchboard's admin API
";

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub enum Scenario {
    Idle { conns: usize, per_user: usize },
    Pairs { pairs: usize, messages: usize, receivers: Receivers },
    Room { occupants: usize, senders: usize, messages: usize },
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
    pub server: Target,
    pub admin_password: Option<String>,
    pub server_pid: Option<u32>,
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

/// Parses the arguments after the program name. `env_password` is
/// `$SWITCHBOARD_ADMIN_PASSWORD`, passed in so that parsing stays a pure function.
pub fn parse(args: &[String], env_password: Option<String>) -> Result<Options, BenchError> {
    let mut words = args.iter().map(String::as_str);
    let first = words.next().ok_or_else(|| usage("no scenario given"))?;
    let (protocol, kind) = match first {
        "xmpp" => match words.next() {
            Some(shape @ ("pairs" | "room")) => (Protocol::Xmpp, shape),
            Some(other) => return Err(usage(&format!("xmpp runs 'pairs' or 'room', not '{other}'"))),
            None => return Err(usage("xmpp needs 'pairs' or 'room'")),
        },
        "idle" | "pairs" | "sse" | "room" => (Protocol::Json, first),
        "-h" | "--help" | "help" => return Err(BenchError::Help),
        other => return Err(usage(&format!("unknown scenario '{other}'"))),
    };

    let mut flags = Flags::default();
    while let Some(flag) = words.next() {
        if flag == "--register" {
            flags.register = true;
            continue;
        }
        if flag == "-h" || flag == "--help" {
            return Err(BenchError::Help);
        }
        let value = words.next().ok_or_else(|| usage(&format!("{flag} needs a value")))?;
        flags.set(flag, value)?;
    }

    let server = Target::parse(flags.server.as_deref().unwrap_or("http://127.0.0.1:7070"), "--server")?;
    let scenario = match kind {
        "idle" => Scenario::Idle {
            conns: flags.need("--conns", flags.conns, 1, MAX_CONNS)?,
            per_user: flags.per_user.unwrap_or(50).clamp(1, 10_000),
        },
        "pairs" | "sse" => Scenario::Pairs {
            pairs: flags.need("--pairs", flags.pairs, 1, MAX_CONNS / 2)?,
            messages: flags.need("--messages", flags.messages, 1, MAX_MESSAGES)?,
            receivers: if kind == "sse" { Receivers::Sse } else { Receivers::Websocket },
        },
        _ => {
            let occupants = flags.need("--occupants", flags.occupants, 1, MAX_CONNS)?;
            let senders = flags.senders.unwrap_or(1);
            if senders == 0 || senders > occupants {
                return Err(usage(&format!("--senders must be 1 to --occupants ({occupants}), not {senders}")));
            }
            Scenario::Room { occupants, senders, messages: flags.need("--messages", flags.messages, 1, MAX_MESSAGES)? }
        }
    };
    let messages_in_run = match &scenario {
        Scenario::Pairs { pairs, messages, .. } => pairs.saturating_mul(*messages),
        Scenario::Room { senders, messages, .. } => senders.saturating_mul(*messages),
        Scenario::Idle { .. } => 0,
    };
    if messages_in_run > MAX_MESSAGES {
        return Err(usage(&format!("at most {MAX_MESSAGES} messages in one run")));
    }
    if flags.register && flags.users_file.is_some() {
        return Err(usage("--register and --users-file exclude each other"));
    }
    if protocol == Protocol::Json && (flags.register || flags.users_file.is_some() || flags.xmpp_url.is_some()) {
        return Err(usage("--register, --users-file and --xmpp-url are for the xmpp scenarios"));
    }
    let accounts = match (flags.register, flags.users_file) {
        (true, _) => Accounts::Register,
        (false, Some(file)) => Accounts::File(file),
        (false, None) => Accounts::AdminApi,
    };
    let admin_password = flags.admin_password.or(env_password).filter(|p| !p.is_empty());
    if accounts == Accounts::AdminApi && admin_password.is_none() {
        return Err(usage(
            "the bench creates its own users: pass --admin-password or set SWITCHBOARD_ADMIN_PASSWORD \
             (for another XMPP server, --users-file or --register)",
        ));
    }
    let xmpp_url = match flags.xmpp_url {
        Some(url) => Target::parse(&url, "--xmpp-url")?,
        None => server.with_path("/xmpp-websocket"),
    };
    let domain = flags.domain.unwrap_or_else(|| "localhost".into());
    let mechanism = match flags.mechanism.as_deref().map(str::to_ascii_uppercase).as_deref() {
        None => None,
        Some("PLAIN") => Some(Mechanism::Plain),
        Some("SCRAM-SHA-1") => Some(Mechanism::ScramSha1),
        Some(other) => return Err(usage(&format!("--mechanism is PLAIN or SCRAM-SHA-1, not '{other}'"))),
    };
    let window = flags.window.unwrap_or(32);
    if window == 0 || window > 100_000 {
        return Err(usage("--window must be 1 to 100000"));
    }
    Ok(Options {
        scenario,
        protocol,
        server,
        admin_password,
        server_pid: flags.server_pid,
        duration: Duration::from_secs_f64(flags.duration.unwrap_or(60.0)),
        rate: flags.rate,
        window,
        json: flags.json,
        xmpp: XmppOptions {
            url: xmpp_url,
            muc_service: flags.muc_service.unwrap_or_else(|| format!("conference.{domain}")),
            domain,
            mechanism,
            accounts,
        },
    })
}

fn usage(problem: &str) -> BenchError {
    BenchError::Usage(problem.to_owned())
}

#[derive(Default)]
struct Flags {
    server: Option<String>,
    admin_password: Option<String>,
    server_pid: Option<u32>,
    duration: Option<f64>,
    rate: Option<f64>,
    window: Option<usize>,
    json: Option<PathBuf>,
    conns: Option<usize>,
    per_user: Option<usize>,
    pairs: Option<usize>,
    messages: Option<usize>,
    occupants: Option<usize>,
    senders: Option<usize>,
    xmpp_url: Option<String>,
    domain: Option<String>,
    muc_service: Option<String>,
    mechanism: Option<String>,
    users_file: Option<PathBuf>,
    register: bool,
}

impl Flags {
    fn set(&mut self, flag: &str, value: &str) -> Result<(), BenchError> {
        match flag {
            "--server" => self.server = Some(value.into()),
            "--admin-password" => self.admin_password = Some(value.into()),
            "--server-pid" => self.server_pid = Some(number(flag, value)?),
            "--duration" => self.duration = Some(positive(flag, value)?),
            "--rate" => self.rate = Some(positive(flag, value)?),
            "--window" => self.window = Some(number(flag, value)?),
            "--json" => self.json = Some(value.into()),
            "--conns" => self.conns = Some(number(flag, value)?),
            "--per-user" => self.per_user = Some(number(flag, value)?),
            "--pairs" => self.pairs = Some(number(flag, value)?),
            "--messages" => self.messages = Some(number(flag, value)?),
            "--occupants" => self.occupants = Some(number(flag, value)?),
            "--senders" => self.senders = Some(number(flag, value)?),
            "--xmpp-url" => self.xmpp_url = Some(value.into()),
            "--domain" => self.domain = Some(value.into()),
            "--muc-service" => self.muc_service = Some(value.into()),
            "--mechanism" => self.mechanism = Some(value.into()),
            "--users-file" => self.users_file = Some(value.into()),
            other => return Err(usage(&format!("unknown option '{other}'"))),
        }
        Ok(())
    }

    fn need(&self, flag: &str, value: Option<usize>, min: usize, max: usize) -> Result<usize, BenchError> {
        let value = value.ok_or_else(|| usage(&format!("this scenario needs {flag}")))?;
        if value < min || value > max {
            return Err(usage(&format!("{flag} must be {min} to {max}, not {value}")));
        }
        Ok(value)
    }
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, BenchError> {
    value.parse().map_err(|_| usage(&format!("{flag} takes a whole number, not '{value}'")))
}

fn positive(flag: &str, value: &str) -> Result<f64, BenchError> {
    match value.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 1e9 => Ok(v),
        _ => Err(usage(&format!("{flag} takes a positive number, not '{value}'"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(line: &str) -> Result<Options, BenchError> {
        let args: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        parse(&args, None)
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
        assert_eq!((o.scenario, o.server_pid), (Scenario::Idle { conns: 500, per_user: 50 }, Some(42)));

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
        assert!(refusal("").contains("no scenario"));
        assert!(refusal("flood").contains("unknown scenario 'flood'"));
        assert!(refusal("xmpp").contains("'pairs' or 'room'"));
        assert!(refusal("xmpp idle").contains("not 'idle'"));
        assert!(refusal("pairs --messages 5 --admin-password pw").contains("needs --pairs"));
        assert!(refusal("pairs --pairs 0 --messages 5 --admin-password pw").contains("--pairs must be 1"));
        assert!(refusal("pairs --pairs ten --messages 5").contains("whole number, not 'ten'"));
        assert!(refusal("pairs --pairs 1 --messages 5 --rate -3").contains("positive number"));
        assert!(refusal("pairs --pairs 1 --messages 5 --duration 0").contains("positive number"));
        assert!(refusal("pairs --pairs 1 --messages").contains("--messages needs a value"));
        assert!(refusal("pairs --pairs 1 --messages 1 --colour red").contains("unknown option '--colour'"));
        assert!(refusal("room --occupants 3 --senders 4 --messages 1 --admin-password pw").contains("--senders"));
        assert!(refusal("pairs --pairs 1000 --messages 100000 --admin-password pw").contains("at most"));
        assert!(refusal("pairs --pairs 1 --messages 1 --register").contains("xmpp scenarios"));
        assert!(refusal("xmpp pairs --pairs 1 --messages 1 --register --users-file f").contains("exclude"));
        assert!(refusal("xmpp pairs --pairs 1 --messages 1 --register --mechanism MD5").contains("MD5"));
        assert!(refusal("idle --conns 5 --admin-password pw --window 0").contains("--window"));
        assert!(matches!(parse_words("--help"), Err(BenchError::Help)));
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
