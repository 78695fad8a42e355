//! The Ozeki 10 HTTP API (`/api`) for HTTP API users: the REST form and the URL form,
//! crossing into the SSE, `/ws` and REST doors and back, stations (`@%`, `@<station>`),
//! folders, the outbox, the second listener, every refusal, and the vendor's own Python
//! client (`ozekilibsrest`, pinned in `tests/ozeki/requirements.txt`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use switchboard::ozeki::render::ozeki_time;
use switchboard_actors::clock::now_ms;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::helpers::*;

pub const GATEWAY: (&str, &str) = ("gateway", "pw-gateway");

pub async fn create_http_user(app: &TestApp, name: &str) {
    let body = json!({"username": name, "password": format!("pw-{name}"), "kind": "http"});
    let r = app.post_json("/restapi/v1/users", app.admin(), &body).await;
    assert_eq!(r.status, 201, "create {name}: {}", r.text());
}

pub async fn api_post(app: &TestApp, action: &str, auth: (&str, &str), body: &Value) -> Reply {
    app.post_json(&format!("/api?action={action}"), auth, body).await
}

async fn api_get(app: &TestApp, query: &str, auth: (&str, &str)) -> Reply {
    app.get(&format!("/api?{query}"), auth).await
}

/// `receivemsg` of a folder: the messages (`data.data`).
pub async fn folder(app: &TestApp, name: &str) -> Vec<Value> {
    let r = api_get(app, &format!("action=receivemsg&folder={name}"), GATEWAY).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let reply = r.json();
    assert_eq!(reply["http_code"], 200, "{reply}");
    assert_eq!(reply["data"]["folder"], name);
    reply["data"]["data"].as_array().unwrap().clone()
}

pub fn texts(messages: &[Value]) -> Vec<&str> {
    messages.iter().map(|m| m["text"].as_str().unwrap()).collect()
}

/// An Ozeki date as the vendor's client writes it (`T` between date and time).
pub fn client_time(ms: i64) -> String {
    ozeki_time(ms).replace(' ', "T")
}

#[actix_web::test]
async fn an_http_user_sends_to_sse_and_ws_users_by_name_address_and_email_and_downloads_their_replies() {
    let app = spawn_app().await;
    for name in ["ann", "bob"] {
        app.create_user(name).await;
    }
    create_http_user(&app, "gateway").await;
    let r = app.get("/restapi/v1/users/gateway", app.admin()).await;
    assert_eq!(r.json()["kind"], "http");
    let mut ann_sse = app.sse("ann", "").await;
    let mut bob_ws = app.ws("bob", "").await;

    let now = now_ms();
    let send = json!({"messages": [
        {"message_id": "m-1", "to_address": "ann@localhost", "text": "hi ann", "create_date": client_time(now),
         "valid_until": client_time(now + 7 * 86_400_000), "time_to_send": client_time(now),
         "submit_report_requested": true, "delivery_report_requested": true, "view_report_requested": true,
         "tags": [{"name": "campaign", "value": "spring"}]},
        {"to_address": "bob", "text": "hi bob"},
        {"to_address": "ghost@localhost", "text": "to nobody"},
        {"to_address": "bob@example.org@%", "text": "bob by e-mail"},
    ]});
    let r = api_post(&app, "sendmsg", GATEWAY, &send).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let reply = r.json();
    assert_eq!(reply["http_code"], 200);
    assert_eq!(reply["response_code"], "PARTIAL_SUCCESS", "{reply}");
    let data = &reply["data"];
    assert_eq!(
        (data["total_count"].as_u64(), data["success_count"].as_u64(), data["failed_count"].as_u64()),
        (Some(4), Some(3), Some(1)),
        "{data}"
    );
    let statuses: Vec<&str> =
        data["messages"].as_array().unwrap().iter().map(|m| m["status"].as_str().unwrap()).collect();
    assert_eq!(statuses[..2], ["SUCCESS", "SUCCESS"]);
    assert!(statuses[2].contains("ghost") && statuses[2].contains("does not exist"), "{}", statuses[2]);
    assert_eq!(statuses[3], "SUCCESS");
    let first = &data["messages"][0];
    assert_eq!(first["message_id"], "m-1");
    assert_eq!(first["from_address"], "gateway@localhost");
    assert_eq!(first["tags"], json!([{"name": "campaign", "value": "spring"}]));
    assert_eq!(first["view_report_requested"], true);
    assert!(first["create_date"].as_str().unwrap().contains(' '), "replies use a space: {first}");
    assert!(data["messages"][1]["message_id"].as_str().unwrap().len() == 36, "a UUID is made when none is given");

    let got = next_of(&mut ann_sse, "chatapi.chat", "chat").await;
    assert_eq!(got.data["body"], "hi ann");
    assert_eq!(got.data["from"], "gateway@localhost/http-api");
    let got = next_ws_of(&mut bob_ws, "chatapi.chat", "chat").await;
    assert_eq!(got["body"], "hi bob");
    let got = next_ws_of(&mut bob_ws, "chatapi.chat", "chat").await;
    assert_eq!(got["body"], "bob by e-mail");

    // A retried send (same id) is answered from the sent folder and not sent twice.
    let retry = json!({"messages": [
        {"message_id": "m-1", "to_address": "ann@localhost", "text": "hi ann"},
        {"message_id": "twice", "to_address": "ann@localhost", "text": "once only"},
        {"message_id": "twice", "to_address": "ann@localhost", "text": "once only"},
    ]});
    let r = api_post(&app, "sendmsg", GATEWAY, &retry).await;
    let statuses: Vec<Value> =
        r.json()["data"]["messages"].as_array().unwrap().iter().map(|m| m["status"].clone()).collect();
    assert_eq!(statuses, ["SUCCESS", "SUCCESS", "SUCCESS"]);
    assert_eq!(next_of(&mut ann_sse, "chatapi.chat", "chat").await.data["body"], "once only");
    ann_sse.assert_quiet_except(Duration::from_millis(300), &["chatapi.presence"]).await;

    // Replies from SSE (REST send) and /ws land in the HTTP user's inbox.
    let ann = app.login("ann").await;
    assert_eq!(app.send("ann", &ann, "gateway", "Reply from ann").await.status, 200);
    bob_ws.send(json!({"op": "message", "to": "gateway@localhost", "body": "Reply from bob", "id": "b1"})).await;
    assert_eq!(bob_ws.next_of_type("ack").await["id"], "b1", "acked after commit");
    let inbox = folder(&app, "inbox").await;
    assert_eq!(texts(&inbox), ["Reply from ann", "Reply from bob"]);
    assert_eq!(inbox[0]["from_address"], "ann@localhost");
    assert_eq!(inbox[0]["to_address"], "gateway@localhost");
    assert!(inbox[0]["from_station"].is_string(), "{}", inbox[0]);

    // Mark the first: it stays but is not downloaded again. Delete the second.
    let ids: Vec<Value> = inbox.iter().map(|m| m["message_id"].clone()).collect();
    let r = api_post(&app, "markmsg", GATEWAY, &json!({"folder": "inbox", "message_ids": [ids[0], "nope"]})).await;
    assert_eq!(r.json()["data"], json!({"folder": "inbox", "message_ids": [ids[0]]}));
    assert_eq!(texts(&folder(&app, "inbox").await), ["Reply from bob"]);
    let r = api_post(&app, "deletemsg", GATEWAY, &json!({"folder": "inbox", "message_ids": [ids[1]]})).await;
    assert_eq!(r.json()["data"], json!({"folder": "inbox", "message_ids": [ids[1]]}));
    assert!(folder(&app, "inbox").await.is_empty());
    assert_eq!(texts(&folder(&app, "deleted").await), ["Reply from bob"]);
    let r = api_post(&app, "deletemsg", GATEWAY, &json!({"folder": "deleted", "message_ids": [ids[1]]})).await;
    assert_eq!(r.json()["data"]["message_ids"], json!([ids[1]]));
    assert!(folder(&app, "deleted").await.is_empty(), "deleting from deleted removes");

    assert_eq!(texts(&folder(&app, "sent").await), ["hi ann", "hi bob", "bob by e-mail", "once only"]);
    let notsent = folder(&app, "notsent").await;
    assert_eq!(texts(&notsent), ["to nobody"]);
    assert!(notsent[0]["status"].as_str().unwrap().contains("ghost"));

    // It is an ordinary message: archived in ann's history with the HTTP user.
    let r = app.get("/restapi/v1/chat/ann/messages?with=gateway", ("ann", "pw-ann")).await;
    let history = r.json();
    let bodies: Vec<&str> =
        history["messages"].as_array().unwrap().iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["hi ann", "once only", "Reply from ann"], "{history}");
}

/// Bob's two stations (resources), from the admin session list.
async fn stations_of(app: &TestApp, user: &str) -> Vec<String> {
    let sessions = app.get("/restapi/v1/sessions", app.admin()).await.json();
    sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["username"] == user)
        .map(|s| s["resource"].as_str().unwrap().to_owned())
        .collect()
}

/// A URL-form call by GET, credentials in the query only.
async fn url_get(app: &TestApp, query: &str) -> Reply {
    reply(app.client.get(app.url(&format!("/api?{query}"))).send().await).await
}

fn url_query(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap()
}

/// The text of each `<name>` element in an XML reply, in order.
fn xml_values(xml: &str, name: &str) -> Vec<String> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    xml.split(&open).skip(1).map(|rest| rest.split(&close).next().unwrap().to_owned()).collect()
}

#[actix_web::test]
async fn the_url_form_reaches_all_stations_or_one_and_receives_with_each_after_download_mode() {
    let app = spawn_app_with(|c| c.ozeki.http_api_bind = "127.0.0.1:0".into()).await;
    app.create_user("bob").await;
    create_http_user(&app, "gateway").await;
    let (first, second) = (app.login("bob").await, app.login("bob").await);
    let mut phone = app.sse("bob", &format!("?stream={first}")).await;
    let mut desk = app.sse("bob", &format!("?stream={second}")).await;
    let stations = stations_of(&app, "bob").await;
    assert_eq!(stations.len(), 2);

    // On the second listener, by GET: to every station of bob's.
    let api_base = app.http_api_base.clone().expect("the second listener is up");
    let query = url_query(&[
        ("command", "SendMessage"),
        ("Username", "gateway"),
        ("Password", "pw-gateway"),
        ("Recipient", "bob@localhost@%"),
        ("MessageType", "SMS:TEXT"),
        ("MessageData", "Hello all stations"),
    ]);
    let r = reply(app.client.get(format!("{api_base}/api?{query}")).send().await).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let xml = r.text();
    assert!(xml.starts_with("<?xml"), "XML by default: {xml}");
    assert_eq!(xml_values(&xml, "action"), ["sendmessage"]);
    assert_eq!(xml_values(&xml, "code"), ["200"]);
    assert_eq!(xml_values(&xml, "statuscode"), ["0"]);
    assert_eq!(xml_values(&xml, "recipient"), ["bob@localhost@%"]);
    for sse in [&mut phone, &mut desk] {
        assert_eq!(next_of(sse, "chatapi.chat", "chat").await.data["body"], "Hello all stations");
    }
    let r = reply(app.client.get(format!("{api_base}/healthz")).send().await).await;
    assert_eq!(r.status, 404, "the second listener serves only /api");

    // On the main listener, a form POST with names in other cases: to one station.
    let form = [
        ("ACTION", "sendmessage"),
        ("username", "gateway"),
        ("PASSWORD", "pw-gateway"),
        ("recipient", &format!("bob@localhost@{}", stations[0])),
        ("messagedata", "Just one station"),
    ];
    let r = reply(app.client.post(app.url("/api")).send_form(&form).await).await;
    assert_eq!(xml_values(&r.text(), "statuscode"), ["0"], "{}", r.text());
    let mut reached = 0;
    for sse in [&mut phone, &mut desk] {
        match sse.next_within(Duration::from_millis(700)).await {
            Some(SseItem::Event(e)) if e.data["body"] == "Just one station" => reached += 1,
            _ => {}
        }
    }
    assert_eq!(reached, 1, "exactly one station got it");

    // MessageCount with numbered fields, one of them refused.
    let query = url_query(&[
        ("command", "SendMessage"),
        ("Username", "gateway"),
        ("Password", "pw-gateway"),
        ("MessageCount", "2"),
        ("Recipient1", "bob"),
        ("MessageData1", "numbered one"),
        ("Recipient2", "nobody@localhost"),
        ("MessageData2", "numbered two"),
    ]);
    let xml = url_get(&app, &query).await.text();
    assert_eq!(xml_values(&xml, "statuscode"), ["0", "1"], "{xml}");
    assert!(xml_values(&xml, "statusmessage")[1].contains("nobody"), "{xml}");

    // Bob answers three times.
    for text in ["answer 1", "answer 2", "answer 3"] {
        assert_eq!(app.send("bob", &first, "gateway@localhost", text).await.status, 200);
    }
    let receive = |limit: &'static str, after: &'static str| {
        let app = &app;
        async move {
            let mut pairs = vec![
                ("command", "ReceiveMessage"),
                ("Username", "gateway"),
                ("Password", "pw-gateway"),
                ("Folder", "inbox"),
            ];
            if !limit.is_empty() {
                pairs.push(("Limit", limit));
            }
            if !after.is_empty() {
                pairs.push(("AfterDownload", after));
            }
            let r = url_get(app, &url_query(&pairs)).await;
            assert_eq!(r.status, 200, "{}", r.text());
            r.text()
        }
    };
    let left = receive("1", "").await;
    assert_eq!(xml_values(&left, "messagedata"), ["answer 1"]);
    assert_eq!(xml_values(&left, "originator"), ["bob@localhost"]);
    assert_eq!(xml_values(&left, "recipient"), ["gateway@localhost"]);
    assert_eq!(xml_values(&receive("1", "leave").await, "messagedata"), ["answer 1"], "left: downloaded again");
    assert_eq!(xml_values(&receive("1", "mark").await, "messagedata"), ["answer 1"]);
    assert_eq!(xml_values(&receive("1", "").await, "messagedata"), ["answer 2"], "marked: not again");
    assert_eq!(xml_values(&receive("", "delete").await, "messagedata"), ["answer 2", "answer 3"]);
    assert!(xml_values(&receive("", "").await, "messagedata").is_empty(), "deleted: gone from the inbox");

    let query = url_query(&[
        ("action", "receivemessage"),
        ("username", "gateway"),
        ("password", "pw-gateway"),
        ("folder", "deleted"),
        ("responseformat", "json"),
    ]);
    let r = url_get(&app, &query).await;
    let reply = r.json();
    assert_eq!(reply["response"]["code"], 200, "{reply}");
    let deleted: Vec<&str> = reply["response"]["data"]["message"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["messagedata"].as_str().unwrap())
        .collect();
    assert_eq!(deleted, ["answer 2", "answer 3"]);
    let query = url_query(&[
        ("command", "ReceiveMessage"),
        ("Username", "gateway"),
        ("Password", "pw-gateway"),
        ("ResponseFormat", "html"),
    ]);
    let r = url_get(&app, &query).await;
    assert!(r.text().contains("<html>") && r.text().contains("<p>Code: 200</p>"), "{}", r.text());
}

#[actix_web::test]
async fn a_message_sent_for_later_waits_in_the_outbox_until_its_time() {
    let app = spawn_app_with(|c| c.ozeki.outbox_tick_secs = 0.2).await;
    app.create_user("ann").await;
    create_http_user(&app, "gateway").await;
    let mut ann_sse = app.sse("ann", "").await;
    // The client's clock is two hours off (a local time without a zone): what counts is
    // time_to_send after create_date.
    let client_now = now_ms() + 2 * 3_600_000;
    let send = json!({"messages": [{"message_id": "later-1", "to_address": "ann", "text": "in two seconds",
        "create_date": client_time(client_now), "time_to_send": client_time(client_now + 2000)}]});
    let r = api_post(&app, "sendmsg", GATEWAY, &send).await;
    assert_eq!(r.json()["data"]["messages"][0]["status"], "SUCCESS", "{}", r.text());
    assert_eq!(texts(&folder(&app, "outbox").await), ["in two seconds"]);
    ann_sse.assert_quiet_except(Duration::from_millis(1000), &["chatapi.presence"]).await;
    let got = loop {
        match ann_sse.next_within(Duration::from_secs(4)).await {
            Some(SseItem::Event(e)) if e.event == "chatapi.chat" => break e,
            Some(_) => continue,
            None => panic!("the outbox message was not sent"),
        }
    };
    assert_eq!(got.data["body"], "in two seconds");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(folder(&app, "outbox").await.is_empty());
    assert_eq!(texts(&folder(&app, "sent").await), ["in two seconds"]);
}

#[actix_web::test]
async fn every_refusal_says_what_is_wrong() {
    let app = spawn_app_with(|c| c.limits.max_body_bytes = 4096).await;
    app.create_user("ann").await;
    create_http_user(&app, "gateway").await;
    let some = json!({"messages": [{"to_address": "ann", "text": "x"}]});

    let r = api_post(&app, "sendmsg", ("gateway", "wrong"), &some).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["http_code"], 401);
    assert_eq!(r.json()["response_code"], "AUTHENTICATION_FAILED");
    assert!(r.json()["response_msg"].as_str().unwrap().contains("wrong user name or password"));
    let r = reply(app.client.post(app.url("/api?action=sendmsg")).send_json(&some).await).await;
    assert_eq!(r.status, 401, "no credentials: {}", r.text());
    let query = url_query(&[
        ("command", "SendMessage"),
        ("Username", "gateway"),
        ("Password", "nope"),
        ("Recipient", "ann"),
        ("MessageData", "x"),
    ]);
    let r = url_get(&app, &query).await;
    assert_eq!(r.status, 401);
    assert_eq!(xml_values(&r.text(), "code"), ["401"], "{}", r.text());

    let r = api_post(&app, "sendmsg", ("ann", "pw-ann"), &some).await;
    assert_eq!(r.status, 403);
    assert!(r.json()["response_msg"].as_str().unwrap().contains("not an HTTP API user"));

    // An HTTP user holds no live station.
    let r = app.post_text("/restapi/v1/chat/gateway/login", GATEWAY, "").await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.message().contains("HTTP API user"), "{}", r.text());
    let r = reply(app.client.get(app.url("/sse/gateway")).basic_auth("gateway", "pw-gateway").send().await).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let mut xmpp = crate::xmpp::Xmpp::connect(&app).await;
    xmpp.open().await;
    xmpp.next().await;
    assert_eq!(xmpp.auth("gateway", "pw-gateway").await.name, "success");
    xmpp.open().await;
    xmpp.next().await;
    xmpp.send("<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
        .await;
    let refused = xmpp.next().await;
    assert_eq!(refused.get_attr("type"), Some("error"), "{}", refused.to_xml());
    assert!(
        refused.to_xml().contains("forbidden") && refused.to_xml().contains("HTTP API user"),
        "{}",
        refused.to_xml()
    );

    let bad_json = reply(
        app.client
            .post(app.url("/api?action=sendmsg"))
            .basic_auth("gateway", "pw-gateway")
            .insert_header(("content-type", "application/json"))
            .send_body("{\"messages\": [")
            .await,
    )
    .await;
    assert_eq!(bad_json.status, 400);
    assert!(bad_json.json()["response_msg"].as_str().unwrap().contains("invalid JSON"));
    let r = api_post(&app, "sendmsg", GATEWAY, &json!({"message": []})).await;
    assert_eq!(r.status, 400);
    assert!(r.json()["response_msg"].as_str().unwrap().contains("messages"));
    let r = api_post(&app, "sendmsg", GATEWAY, &json!({"messages": [{"to_address": "ann", "text": "a".repeat(5000)}]}))
        .await;
    assert_eq!(r.status, 413, "oversized body: {}", r.text());
    assert_eq!(r.json()["response_code"], "PAYLOAD_TOO_LARGE");
    let many: Vec<Value> = (0..101).map(|_| json!({})).collect();
    let r = api_post(&app, "sendmsg", GATEWAY, &json!({"messages": many})).await;
    assert_eq!(r.status, 413, "{}", r.text());

    let r = api_post(&app, "launch", GATEWAY, &some).await;
    assert_eq!(r.status, 400);
    assert!(r.json()["response_msg"].as_str().unwrap().contains("unknown action"));
    let r = app.get("/api", GATEWAY).await;
    assert_eq!(r.status, 400);
    assert!(r.json()["response_msg"].as_str().unwrap().contains("no action"));
    let r = api_get(&app, "action=receivemsg&folder=trash", GATEWAY).await;
    assert!(r.status == 400 && r.json()["response_msg"].as_str().unwrap().contains("folder"), "{}", r.text());
    let r = api_get(&app, "action=receivemsg&limit=-3", GATEWAY).await;
    assert!(r.status == 400 && r.json()["response_msg"].as_str().unwrap().contains("limit"), "{}", r.text());
    let r = api_post(&app, "deletemsg", GATEWAY, &json!({"folder": "inbox"})).await;
    assert!(r.status == 400 && r.json()["response_msg"].as_str().unwrap().contains("message_ids"));
    let query = url_query(&[
        ("command", "ReceiveMessage"),
        ("Username", "gateway"),
        ("Password", "pw-gateway"),
        ("AfterDownload", "burn"),
    ]);
    let r = url_get(&app, &query).await;
    assert_eq!(r.status, 400);
    assert!(xml_values(&r.text(), "message")[0].contains("AfterDownload"), "{}", r.text());
    let query = url_query(&[
        ("command", "SendMessage"),
        ("Username", "gateway"),
        ("Password", "pw-gateway"),
        ("Recipient", "ann"),
    ]);
    let r = url_get(&app, &query).await;
    assert!(r.status == 400 && r.text().contains("MessageData is missing"), "{}", r.text());

    // Per message: each says why, the rest go.
    let mixed = json!({"messages": [
        {"to_address": "ann", "text": "fine"},
        {"to_address": "ann", "text": "bad date", "time_to_send": "tomorrow"},
        {"to_address": "ann@localhost@", "text": "no station"},
        {"to_address": "someone@example.com", "text": "unknown e-mail"},
        {"to_address": "ann", "text": "   "},
        {"to_address": "ann", "text": "bad tags", "tags": "x"},
        "not an object",
    ]});
    let r = api_post(&app, "sendmsg", GATEWAY, &mixed).await;
    let data = &r.json()["data"];
    assert_eq!(
        (data["total_count"].as_u64(), data["success_count"].as_u64(), data["failed_count"].as_u64()),
        (Some(7), Some(1), Some(6)),
        "{data}"
    );
    let statuses: Vec<&str> =
        data["messages"].as_array().unwrap().iter().map(|m| m["status"].as_str().unwrap()).collect();
    for (status, expected) in
        statuses[1..].iter().zip(["time_to_send", "station", "e-mail", "empty", "tags", "JSON object"])
    {
        assert!(status.contains(expected), "{status:?} should mention {expected:?}");
    }
}

type ClientLines = tokio::io::Lines<BufReader<tokio::process::ChildStdout>>;

/// The client's next step, which must be `event`.
async fn step(lines: &mut ClientLines, event: &str) -> Value {
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .unwrap_or_else(|_| panic!("no '{event}' from the client in time"))
        .expect("client output")
        .unwrap_or_else(|| panic!("the client ended before '{event}'"));
    let value: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("client said: {line}"));
    assert_ne!(value["event"], "failed", "the client failed: {value}");
    assert_eq!(value["event"], event, "{value}");
    value
}

fn ozeki_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ozeki")
}

/// The virtual environment with the pinned vendor client, made if missing.
fn ensure_venv() -> PathBuf {
    let dir = ozeki_dir();
    let python = dir.join(".venv/bin/python");
    let ready =
        std::process::Command::new(&python).args(["-c", "import ozekilibsrest"]).status().is_ok_and(|s| s.success());
    if !ready {
        let made = std::process::Command::new("python3")
            .args(["-m", "venv", ".venv"])
            .current_dir(&dir)
            .status()
            .expect("python3 is installed (the Ozeki client test needs Python 3 with venv)");
        assert!(made.success(), "python3 -m venv failed");
        let installed = std::process::Command::new(dir.join(".venv/bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "-r", "requirements.txt"])
            .current_dir(&dir)
            .status()
            .expect("pip runs");
        assert!(installed.success(), "pip install -r tests/ozeki/requirements.txt failed");
    }
    python
}

#[actix_web::test]
async fn the_vendors_python_client_sends_downloads_marks_and_deletes() {
    let python = ensure_venv();
    let app = spawn_app().await;
    for name in ["ann", "bob"] {
        app.create_user(name).await;
    }
    create_http_user(&app, "gateway").await;
    let mut ann_sse = app.sse("ann", "").await;
    let mut bob_ws = app.ws("bob", "").await;

    let mut child = tokio::process::Command::new(python)
        .arg("http_user.py")
        .args([app.url("/api").as_str(), "gateway", "pw-gateway", "ann@localhost@%", "bob@localhost"])
        .current_dir(ozeki_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the venv's python runs");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let one = step(&mut lines, "sent_one").await;
    assert_eq!(one["status"], "Success", "{one}");
    let batch = step(&mut lines, "sent_batch").await;
    assert_eq!(
        (batch["total"].as_u64(), batch["success"].as_u64(), batch["failed"].as_u64()),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(batch["results"][0]["status"], "Success");
    assert_eq!(batch["results"][1]["status"], "Failed");
    assert!(batch["results"][1]["reason"].as_str().unwrap().contains("nobody"), "{batch}");

    let got = next_of(&mut ann_sse, "chatapi.chat", "chat").await;
    assert_eq!(got.data["body"], "Hello from the vendor's client");
    assert_eq!(got.data["from"], "gateway@localhost/http-api");
    assert_eq!(next_ws_of(&mut bob_ws, "chatapi.chat", "chat").await["body"], "Second recipient, same batch");

    let ann = app.login("ann").await;
    assert_eq!(app.send("ann", &ann, "gateway", "Reply one, from ann").await.status, 200);
    bob_ws.send(json!({"op": "message", "to": "gateway", "body": "Reply two, from bob", "id": "r2"})).await;
    bob_ws.next_of_type("ack").await;
    stdin.write_all(b"go\n").await.unwrap();

    let inbox = step(&mut lines, "inbox").await;
    let got: Vec<(&str, &str)> = inbox["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["from"].as_str().unwrap(), m["text"].as_str().unwrap()))
        .collect();
    assert_eq!(got, [("ann@localhost", "Reply one, from ann"), ("bob@localhost", "Reply two, from bob")]);
    assert_eq!(step(&mut lines, "marked").await["ok"], true);
    let after_mark = step(&mut lines, "inbox_after_mark").await;
    assert_eq!(after_mark["messages"].as_array().unwrap().len(), 1);
    assert_eq!(after_mark["messages"][0]["text"], "Reply two, from bob");
    let downloaded = step(&mut lines, "downloaded").await;
    assert_eq!(downloaded["messages"][0]["text"], "Reply two, from bob");
    assert_eq!(step(&mut lines, "inbox_after_download").await["messages"], json!([]));
    let deleted = step(&mut lines, "deleted_folder").await;
    assert_eq!(deleted["messages"][0]["text"], "Reply two, from bob", "download_incoming deleted it");
    assert_eq!(step(&mut lines, "purged").await["ok"], true);
    assert_eq!(step(&mut lines, "deleted_after_purge").await["messages"], json!([]));
    let sent = step(&mut lines, "sent_folder").await;
    let sent: Vec<&str> = sent["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(sent, ["Hello from the vendor's client", "Second recipient, same batch"]);
    assert_eq!(step(&mut lines, "notsent_folder").await["messages"][0]["text"], "To nobody");
    step(&mut lines, "done").await;
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await.expect("the client exits").unwrap();
    assert!(status.success(), "the client exited with {status}");
}

#[actix_web::test]
async fn a_message_past_its_valid_until_is_not_delivered_from_the_offline_store() {
    let app = spawn_app().await;
    app.create_user("ann").await;
    create_http_user(&app, "gateway").await;
    let now = now_ms();
    let send = json!({"messages": [
        {"to_address": "ann", "text": "short-lived", "create_date": client_time(now), "valid_until": client_time(now + 1000)},
        {"to_address": "ann", "text": "lasting", "create_date": client_time(now), "valid_until": client_time(now + 86_400_000)},
    ]});
    assert_eq!(api_post(&app, "sendmsg", GATEWAY, &send).await.json()["data"]["success_count"], 2);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut ann = app.sse("ann", "").await;
    let got = next_of(&mut ann, "chatapi.chat", "chat").await;
    assert_eq!(got.data["body"], "lasting", "the expired one was not delivered");
    // Both stay in the archive, which is history, not delivery.
    let history = app.get("/restapi/v1/chat/ann/messages", ("ann", "pw-ann")).await.json();
    assert_eq!(history["messages"].as_array().unwrap().len(), 2);
}
