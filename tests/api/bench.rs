//! switchboard-bench against the real server: a short run of every scenario (small N, no
//! timing assertions), its accounts removed afterwards, and its clear errors when the
//! server is not there or refuses the admin.

use serde_json::Value;
use switchboard_bench::args::parse;
use switchboard_bench::report::Report;
use switchboard_bench::BenchError;

use crate::helpers::*;

/// Runs the bench on its own runtime (as the binary does), off the server's thread.
async fn bench(line: String) -> Result<Report, BenchError> {
    actix_web::rt::task::spawn_blocking(move || {
        let args: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        let opts = parse(&args, None)?;
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(switchboard_bench::run(opts))
    })
    .await
    .expect("the bench thread")
}

fn figure(report: &Report, name: &str) -> f64 {
    report.value(name).unwrap_or_else(|| panic!("no figure {name} in\n{}", report.table()))
}

#[actix_web::test]
async fn every_scenario_runs_to_completion_and_cleans_up() {
    // Webhooks go to the bench's receiver on loopback.
    let app = spawn_app_with(|c| {
        c.apps.allow_private_destinations = true;
        c.xmpp.c2s_bind = "127.0.0.1:0".into();
        c.xmpp.allow_plain_on_loopback = true;
    })
    .await;
    let common = format!(
        "--server {} --admin-password {} --duration 30 --server-pid {}",
        app.base,
        app.admin_password,
        std::process::id()
    );
    let json_file = app.dir.path().join("pairs.json");

    let pairs = bench(format!("pairs --pairs 3 --messages 20 --json {} {common}", json_file.display())).await.unwrap();
    assert!(pairs.complete, "{}", pairs.table());
    assert_eq!(
        (figure(&pairs, "messages_sent"), figure(&pairs, "messages_acked"), figure(&pairs, "deliveries")),
        (60.0, 60.0, 60.0)
    );
    assert!(figure(&pairs, "latency_p99") >= figure(&pairs, "latency_p50"));
    assert!(figure(&pairs, "server_cpu_per_message") >= 0.0, "--server-pid is read");
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&json_file).unwrap()).unwrap();
    assert_eq!(
        (written["scenario"].as_str(), written["figures"]["deliveries"]["value"].as_f64()),
        (Some("pairs"), Some(60.0))
    );

    let paced = bench(format!("sse --pairs 2 --messages 10 --rate 200 {common}")).await.unwrap();
    assert!(paced.complete, "{}", paced.table());
    assert_eq!((figure(&paced, "deliveries"), figure(&paced, "messages_acked")), (20.0, 20.0));

    let room = bench(format!("room --occupants 6 --senders 2 --messages 5 {common}")).await.unwrap();
    assert!(room.complete, "{}", room.table());
    assert_eq!(figure(&room, "deliveries"), 60.0, "2 senders × 5 messages × 6 occupants");
    assert!(figure(&room, "join_presences_received") > 0.0);
    assert!(figure(&room, "join_all") > 0.0);

    let xmpp_pairs = bench(format!("xmpp pairs --pairs 2 --messages 10 --mechanism PLAIN {common}")).await.unwrap();
    assert!(xmpp_pairs.complete, "{}", xmpp_pairs.table());
    assert_eq!(figure(&xmpp_pairs, "deliveries"), 20.0);

    let xmpp_room = bench(format!("xmpp room --occupants 4 --senders 1 --messages 5 {common}")).await.unwrap();
    assert!(xmpp_room.complete, "{}", xmpp_room.table());
    assert_eq!(figure(&xmpp_room, "deliveries"), 20.0);

    // The same over TCP (RFC 6120) on the XMPP listener.
    let tcp = format!("--xmpp-url tcp://127.0.0.1:{}", app.xmpp_port.unwrap());
    let tcp_pairs = bench(format!("xmpp pairs --pairs 2 --messages 10 {tcp} {common}")).await.unwrap();
    assert!(tcp_pairs.complete, "{}", tcp_pairs.table());
    assert_eq!(figure(&tcp_pairs, "deliveries"), 20.0);
    let tcp_logins = bench(format!("xmpp login --logins 5 {tcp} {common}")).await.unwrap();
    assert!(tcp_logins.complete, "{}", tcp_logins.table());
    assert_eq!(figure(&tcp_logins, "logins"), 5.0, "{}", tcp_logins.table());
    let tcp_idle = bench(format!("xmpp idle --conns 6 --per-user 2 {tcp} {common}")).await.unwrap();
    assert_eq!(figure(&tcp_idle, "connections_held"), 6.0, "{}", tcp_idle.table());
    assert_eq!(figure(&tcp_idle, "server_xmpp_connections"), 6.0, "{}", tcp_idle.table());
    // A reconnect storm: every client back, every message sent meanwhile received once.
    let storm = bench(format!("xmpp storm --clients 12 {tcp} {common}")).await.unwrap();
    assert!(storm.complete, "{}", storm.table());
    assert_eq!(figure(&storm, "signed_in"), 12.0, "{}", storm.table());
    assert_eq!(figure(&storm, "messages_received"), 24.0, "{}", storm.table());
    assert_eq!((figure(&storm, "messages_lost"), figure(&storm, "messages_duplicated")), (0.0, 0.0));

    let ozeki = bench(format!("ozeki --senders 2 --messages 25 --batch 10 {common}")).await.unwrap();
    assert!(ozeki.complete, "{}", ozeki.table());
    assert_eq!((figure(&ozeki, "messages_acked"), figure(&ozeki, "deliveries")), (50.0, 50.0), "{}", ozeki.table());
    assert!(figure(&ozeki, "request_p99") >= figure(&ozeki, "request_p50"));

    let hooks = bench(format!("webhooks --senders 2 --messages 15 {common}")).await.unwrap();
    assert!(hooks.complete, "{}", hooks.table());
    assert_eq!((figure(&hooks, "deliveries"), figure(&hooks, "messages_acked")), (30.0, 30.0), "{}", hooks.table());

    let idle = bench(format!("idle --conns 40 --per-user 8 --rate 400 {common}")).await.unwrap();
    assert!(idle.complete, "{}", idle.table());
    assert_eq!((figure(&idle, "connections_held"), figure(&idle, "server_ws_connections")), (40.0, 40.0));
    assert!(figure(&idle, "server_rss_holding") > 0.0);

    // Every account the bench made is gone again, and no room is left.
    let users = app.get("/restapi/v1/users", app.admin()).await.json();
    let names: Vec<&str> = users["users"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["admin"]);
    let rooms = app.get("/restapi/v1/chatrooms", app.admin()).await.json();
    assert_eq!(rooms["chatRooms"].as_array().map(Vec::len), Some(0), "{rooms}");
}

#[actix_web::test]
async fn the_bench_says_clearly_when_it_cannot_run() {
    let app = spawn_app().await;
    // Nothing listens on a port the OS just freed.
    let free_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let error = bench(format!("pairs --pairs 1 --messages 1 --admin-password x --server http://127.0.0.1:{free_port}"))
        .await
        .err()
        .expect("no server");
    assert!(matches!(error, BenchError::Unreachable(_)), "{error:?}");
    assert!(error.to_string().contains("is the server running"), "{error}");

    let error = bench(format!("pairs --pairs 1 --messages 1 --admin-password wrong --server {}", app.base))
        .await
        .err()
        .expect("a wrong admin password");
    assert!(matches!(error, BenchError::Refused(_)), "{error:?}");
    assert!(error.to_string().contains("--admin-password"), "{error}");

    let error = bench(format!(
        "xmpp pairs --pairs 1 --messages 1 --users-file {}/missing.txt --server {}",
        app.dir.path().display(),
        app.base
    ))
    .await
    .err()
    .expect("a missing users file");
    assert!(error.to_string().contains("cannot read --users-file"), "{error}");

    // Accounts from a file that the server does not know: the login is refused by name.
    let file = app.dir.path().join("users.txt");
    std::fs::write(&file, "ghost:nope\nshade:nope\n").unwrap();
    let error =
        bench(format!("xmpp pairs --pairs 1 --messages 1 --users-file {} --server {}", file.display(), app.base))
            .await
            .err()
            .expect("unknown accounts");
    assert!(error.to_string().contains("refused the login of"), "{error}");

    // The binary's exit statuses: 2 for a usage error, 0 for --help.
    assert_eq!(switchboard_bench::main_with(&["pairs".into()]), 2);
    assert_eq!(switchboard_bench::main_with(&["--help".into()]), 0);
}
