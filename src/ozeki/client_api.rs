//! Ozeki Chat's JSON client API (`specs/vendor_apis.md` §1.1–1.4): `POST
//! …/index.php?srv=chatserver&api=<name>` under any path prefix (also without
//! `index.php`), dispatched on `api`, then on the body's `action`.
//!
//! Sign-in: `chatlogin` `login` with an `apikey` the admin API issued for a user's station
//! (`Ozeki-Station` names it). Every other call is signed: `Ozeki-Station`, `Ozeki-User`
//! (the caller's md5 user id) and `Ozeki-Signature`, the lower-case hex HMAC-SHA256 of the
//! raw request body keyed with the SHA-256 digest of the station's API key. A call without
//! valid credentials is answered 401; every other refusal is HTTP 200 with
//! `{"status":"ERROR","errormessage":"…"}`, as the vendor does (413 for an oversized body).
//!
//! Conversations are the core's 1:1 conversations; what the client adds is an ordinary
//! message (its `Data` decoded as the body when it is UTF-8 text), and what other doors
//! send appears in downloads with `Data` = base64 of its body. `Data`, `rsakey`,
//! `publickey`, `displayname` and `secret` are the client's ciphertext: never interpreted.

use std::collections::BTreeSet;

use actix_web::http::header::HeaderMap;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use switchboard_actors::clock::now_ms;
use switchboard_actors::conversations::{
    AvailabilityOf, ConversationHeads, ConversationListChanged, Downloaded, PollChanges, Watch,
};
use switchboard_actors::model::ozeki::{
    ConversationId, ConversationProps, ConversationReport, OzekiUserId, StationKey,
};
use switchboard_actors::model::records::{HistoryQuery, UserRecord};
use switchboard_actors::model::{MessageKind, NewMessage, StoredMessage};
use switchboard_actors::random::random_hex;
use switchboard_actors::router::{Blocklist, SendDisplayed, Submit, UserStatus};
use switchboard_actors::{Jid, Username};

use super::keys::key_digest;
use super::render::{ozeki_time, parse_ozeki_time};
use crate::error::ApiError;
use crate::inbound::{check_message_body, read_limited_body};
use crate::state::AppState;

/// `ValidUntil` of a message that does not expire (one from another door).
const NEVER: &str = "9999-12-31 23:59:59";
/// Most messages (and reports) one download returns.
const MAX_DOWNLOAD: usize = 1000;
/// Longest client-made message or report id, in bytes.
const MAX_ID_BYTES: usize = 128;
/// Conversations one user's list holds at most.
const MAX_CONVERSATIONS: usize = 1000;

type HmacSha256 = Hmac<Sha256>;

/// A refusal: 401 for credentials, 413 for size, otherwise the vendor's HTTP 200 `ERROR`.
struct Refusal {
    status: StatusCode,
    message: String,
}

impl Refusal {
    fn error(message: impl Into<String>) -> Refusal {
        Refusal { status: StatusCode::OK, message: message.into() }
    }

    fn credentials(message: impl Into<String>) -> Refusal {
        Refusal { status: StatusCode::UNAUTHORIZED, message: message.into() }
    }
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Refusal {
        let status = match e.status {
            StatusCode::UNAUTHORIZED | StatusCode::PAYLOAD_TOO_LARGE => e.status,
            _ => StatusCode::OK,
        };
        Refusal { status, message: e.message }
    }
}

impl From<switchboard_actors::StoreError> for Refusal {
    fn from(e: switchboard_actors::StoreError) -> Refusal {
        Refusal::error(e.to_string())
    }
}

type Outcome = Result<Map<String, Value>, Refusal>;

fn ok(fields: Value) -> Outcome {
    match fields {
        Value::Object(map) => Ok(map),
        _ => Ok(Map::new()),
    }
}

/// Whether a request is for this door: `srv` and `api` in its query.
pub fn is_client_call(req: &HttpRequest) -> bool {
    let query = req.query_string();
    let names: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    names.iter().any(|(k, _)| k == "srv") && names.iter().any(|(k, _)| k == "api")
}

/// Every call.
pub async fn call(req: HttpRequest, payload: web::Payload, state: web::Data<AppState>) -> HttpResponse {
    let outcome = async {
        let body = read_limited_body(payload, state.config.limits.max_body_bytes).await?;
        if req.method() != actix_web::http::Method::POST {
            return Err(Refusal::error(format!("use POST (not {}) with a JSON body", req.method())));
        }
        let query: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string())
            .map_err(|e| Refusal::error(format!("unreadable query: {e}")))?;
        let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
        let (srv, api) = (param("srv"), param("api"));
        let request: Value =
            serde_json::from_slice(&body).map_err(|e| Refusal::error(format!("the body is not valid JSON: {e}")))?;
        if !request.is_object() {
            return Err(Refusal::error("the body must be a JSON object"));
        }
        let action = request.get("action").and_then(Value::as_str).unwrap_or_default().to_owned();
        let expected_srv = if api == "workspace" { "chatowner" } else { "chatserver" };
        if srv != expected_srv {
            return Err(Refusal::error(format!("srv={srv:?}: api={api} is served with srv={expected_srv}")));
        }
        if api == "chatlogin" {
            return match action.as_str() {
                "login" => login(&req, &state, &request).await,
                other => Err(unknown_action(&api, other)),
            };
        }
        if !KNOWN_APIS.contains(&api.as_str()) {
            return Err(Refusal::error(format!("unknown api {api:?}; known: chatlogin, {}", KNOWN_APIS.join(", "))));
        }
        let caller = signed_caller(req.headers(), &body, &state).await?;
        state.feed.send(Watch { username: caller.user.username.clone() }).await.ok();
        dispatch(&state, &caller, &api, &action, &request).await
    }
    .await;
    let (status, mut envelope) = match outcome {
        Ok(fields) => (StatusCode::OK, fields),
        Err(refusal) => {
            let mut map = Map::new();
            map.insert("status".into(), json!("ERROR"));
            map.insert("errormessage".into(), json!(refusal.message));
            (refusal.status, map)
        }
    };
    envelope.entry("status").or_insert(json!("OK"));
    envelope.entry("errormessage").or_insert(json!(""));
    HttpResponse::build(status).json(Value::Object(envelope))
}

const KNOWN_APIS: &[&str] = &[
    "chatavailability",
    "chatfriends",
    "chatreports",
    "chatnotification",
    "chatconversation",
    "chatblocklist",
    "workspace",
];

fn unknown_action(api: &str, action: &str) -> Refusal {
    Refusal::error(format!("unknown action {action:?} for api={api}"))
}

/// A signed-in caller: the account, its Ozeki id and its station.
struct Caller {
    user: UserRecord,
    id: OzekiUserId,
    station: String,
}

impl Caller {
    /// The caller's station: its station id is the resource.
    fn jid(&self) -> Result<Jid, Refusal> {
        let user = Username::parse(&self.user.username).map_err(|e| Refusal::error(e.to_string()))?;
        Ok(Jid::full(user, self.station.clone()))
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// The account a key belongs to, with its Ozeki id (refused without an e-mail address).
async fn key_owner(state: &AppState, key: &StationKey) -> Result<(UserRecord, OzekiUserId), Refusal> {
    let user = state
        .accounts
        .find(&key.username)
        .await?
        .ok_or_else(|| Refusal::credentials("the key's user no longer exists"))?;
    let id = OzekiUserId::from_email(&user.email).ok_or_else(|| {
        Refusal::error(format!("user '{}' has no e-mail address, so it has no Ozeki user id", user.username))
    })?;
    Ok((user, id))
}

async fn signed_caller(headers: &HeaderMap, body: &[u8], state: &AppState) -> Result<Caller, Refusal> {
    let station = header(headers, "ozeki-station").ok_or_else(|| Refusal::credentials("Ozeki-Station is missing"))?;
    let claimed = header(headers, "ozeki-user").ok_or_else(|| Refusal::credentials("Ozeki-User is missing"))?;
    let signature =
        header(headers, "ozeki-signature").ok_or_else(|| Refusal::credentials("Ozeki-Signature is missing"))?;
    let key = state.conversations.key_of_station(station).await?.ok_or_else(|| {
        Refusal::credentials(format!("station {station:?} has no key (it was never issued, or revoked)"))
    })?;
    let mut mac = HmacSha256::new_from_slice(&key.digest).expect("HMAC takes any key length");
    mac.update(body);
    let expected: [u8; 32] = mac.finalize().into_bytes().into();
    let given = decode_hex(signature).unwrap_or_default();
    if given.len() != expected.len() || !bool::from(given.ct_eq(&expected[..])) {
        return Err(Refusal::credentials(
            "Ozeki-Signature does not match: hex HMAC-SHA256 of the body, keyed with SHA-256 of the API key",
        ));
    }
    let (user, id) = key_owner(state, &key).await?;
    if OzekiUserId::parse(claimed).as_ref() != Some(&id) {
        return Err(Refusal::credentials("Ozeki-User is not the user id of the station's account"));
    }
    Ok(Caller { user, id, station: key.station })
}

fn decode_hex(raw: &str) -> Option<Vec<u8>> {
    if raw.len() % 2 != 0 {
        return None;
    }
    (0..raw.len()).step_by(2).map(|i| u8::from_str_radix(raw.get(i..i + 2)?, 16).ok()).collect()
}

/// This server's address as the client reached it, with the path before `index.php`.
fn base_url(req: &HttpRequest) -> String {
    let info = req.connection_info();
    let path = req.path();
    let prefix = path.strip_suffix("/index.php").or_else(|| path.strip_suffix("index.php")).unwrap_or(path);
    format!("{}://{}{}", info.scheme(), info.host(), prefix.trim_end_matches('/'))
}

async fn login(req: &HttpRequest, state: &AppState, request: &Value) -> Outcome {
    let apikey = request.get("apikey").and_then(Value::as_str).unwrap_or_default();
    if apikey.trim().is_empty() {
        return Err(Refusal::credentials("apikey is missing"));
    }
    let key = state
        .conversations
        .key_by_digest(key_digest(apikey))
        .await?
        .ok_or_else(|| Refusal::credentials("the apikey is not valid (it was never issued, or revoked)"))?;
    if let Some(station) = header(req.headers(), "ozeki-station") {
        if station != key.station {
            return Err(Refusal::credentials("the apikey belongs to another station than Ozeki-Station"));
        }
    }
    let (user, id) = key_owner(state, &key).await?;
    state.feed.send(Watch { username: user.username.clone() }).await.ok();
    ok(login_json(&base_url(req), &user, &id, &key.station))
}

/// The login reply (§1.4): `urls` under `base`, the websocket door as the listener.
fn login_json(base: &str, user: &UserRecord, id: &OzekiUserId, station: &str) -> Value {
    let api = |name: &str| format!("{base}/index.php?srv=chatserver&api={name}");
    let ws_base = base.replacen("http", "ws", 1);
    let host_ws = ws_base.split('/').take(3).collect::<Vec<_>>().join("/");
    let property = |name: &str| user.properties.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    json!({
        "server": concat!("switchboard ", env!("CARGO_PKG_VERSION")),
        "listeners": {"ws": format!("{host_ws}/ws")},
        "registration": "true",
        "rsakey": property("ozeki.rsakey").unwrap_or_default(),
        "userid": id.as_str(),
        "fullname": display_name(user),
        "nick": if user.name.is_empty() { user.username.clone() } else { user.name.clone() },
        "stationid": station,
        "urls": {
            "login": api("chatlogin"),
            "availability": api("chatavailability"),
            "conversation": api("chatconversation"),
            "conversationgroup": api("chatconversationgroup"),
            "blocklist": api("chatblocklist"),
            "fileserver": api("chatfileserver"),
            "friends": api("chatfriends"),
            "notification": api("chatnotification"),
            "reports": api("chatreports"),
            "workspace": format!("{base}/index.php?srv=chatowner&api=workspace"),
        },
    })
}

fn display_name(user: &UserRecord) -> String {
    if user.name.is_empty() {
        user.username.clone()
    } else {
        user.name.clone()
    }
}

async fn dispatch(state: &AppState, caller: &Caller, api: &str, action: &str, request: &Value) -> Outcome {
    match (api, action) {
        ("chatavailability", "useravailable") => ok(json!({})),
        ("chatfriends", "list") => friends(state, caller).await,
        ("chatreports", "viewed") => viewed(state, caller, request).await,
        ("chatnotification", "download") => notifications(state, caller).await,
        ("chatconversation", "list") => conversation_list(state, caller).await,
        ("chatconversation", "add") => add(state, caller, request).await,
        ("chatconversation", "download") => download(state, caller, request, Direction::Forward).await,
        ("chatconversation", "downloadpartial") => download(state, caller, request, Direction::Backward).await,
        ("chatconversation", setting) if SETTINGS.contains(&setting) => change(state, caller, request, setting).await,
        ("chatblocklist", "blocklist") => blocklist(state, caller).await,
        ("workspace", "workspaceregister") => workspace(state, caller, request).await,
        (api, action) => Err(unknown_action(api, action)),
    }
}

const SETTINGS: &[&str] =
    &["clear", "favorite", "unfavorite", "mute", "unmute", "hide", "unhide", "setlistitembackgroundcolor"];

/// A user who can take part in Ozeki conversations: one with an e-mail address.
struct Party {
    user: UserRecord,
    id: OzekiUserId,
}

impl Party {
    fn jid(&self) -> Result<Jid, Refusal> {
        Username::parse(&self.user.username).map(Jid::bare).map_err(|e| Refusal::error(e.to_string()))
    }
}

async fn party(state: &AppState, username: &str) -> Result<Option<Party>, Refusal> {
    let Some(user) = state.accounts.find(username).await? else { return Ok(None) };
    Ok(OzekiUserId::from_email(&user.email).map(|id| Party { user, id }))
}

/// The caller's contacts that have an Ozeki id.
async fn contacts(state: &AppState, caller: &Caller) -> Result<Vec<Party>, Refusal> {
    let roster = state.accounts.roster(caller.user.username.clone()).await?;
    let mut found = Vec::new();
    for item in roster.iter().filter(|i| i.listed) {
        if let Some(p) = party(state, &item.contact).await? {
            found.push(p);
        }
    }
    Ok(found)
}

/// Everyone the caller has a conversation with or could: its contacts, those it exchanged
/// messages with, and those it has settings for.
async fn candidates(state: &AppState, caller: &Caller) -> Result<Vec<Party>, Refusal> {
    let mut names: BTreeSet<String> = BTreeSet::new();
    for p in contacts(state, caller).await? {
        names.insert(p.user.username);
    }
    let heads = state.feed.send(ConversationHeads { username: caller.user.username.clone() }).await.unwrap_or_default();
    names.extend(heads.into_iter().map(|(peer, _)| peer));
    for props in state.conversations.all_settings(&caller.user.username).await? {
        names.insert(props.peer);
    }
    let mut found = Vec::new();
    for name in names.into_iter().take(MAX_CONVERSATIONS) {
        if name == caller.user.username {
            continue;
        }
        if let Some(p) = party(state, &name).await? {
            found.push(p);
        }
    }
    Ok(found)
}

/// The peer of a conversation id, among the caller's candidates.
async fn peer_of(state: &AppState, caller: &Caller, request: &Value) -> Result<(ConversationId, Party), Refusal> {
    let raw = request.get("conversationid").and_then(Value::as_str).unwrap_or_default();
    let wanted = ConversationId::parse(raw)
        .ok_or_else(|| Refusal::error(format!("conversationid {raw:?} is not 32 hex digits")))?;
    for p in candidates(state, caller).await? {
        if ConversationId::between(&caller.id, &p.id) == wanted {
            return Ok((wanted, p));
        }
    }
    Err(Refusal::error(format!("conversation {wanted} is not one of yours (add the other user as a contact first)")))
}

fn availability_name(status: Option<&UserStatus>) -> &'static str {
    match status {
        Some(s) if s.online && s.available_to_chat => "available",
        Some(s) if s.online => "away",
        _ => "offline",
    }
}

async fn friends(state: &AppState, caller: &Caller) -> Outcome {
    let contacts = contacts(state, caller).await?;
    let names: Vec<String> = contacts.iter().map(|p| p.user.username.clone()).collect();
    let statuses = state.feed.send(AvailabilityOf { usernames: names }).await.unwrap_or_default();
    let mut friends = Map::new();
    let mut availabilities = Vec::new();
    for p in &contacts {
        let status = statuses.iter().find(|(u, _)| *u == p.user.username).map(|(_, s)| s);
        friends.insert(p.id.to_string(), json!(display_name(&p.user)));
        let publickey = p.user.properties.iter().find(|(k, _)| k == "ozeki.publickey").map(|(_, v)| v.clone());
        availabilities.push(json!({
            "friendid": p.id.as_str(),
            "friendname": display_name(&p.user),
            "publickey": publickey.unwrap_or_default(),
            "availability": availability_name(status),
        }));
    }
    ok(json!({"friends": friends, "availabilities": availabilities}))
}

async fn notifications(state: &AppState, caller: &Caller) -> Outcome {
    let contacts = contacts(state, caller).await?;
    let poll = PollChanges {
        username: caller.user.username.clone(),
        station: caller.station.clone(),
        contacts: contacts.iter().map(|p| p.user.username.clone()).collect(),
    };
    let changes = state.feed.send(poll).await.unwrap_or_default();
    let mut conversations = Vec::new();
    for peer in &changes.conversations {
        if let Some(p) = party(state, peer).await? {
            conversations.push(ConversationId::between(&caller.id, &p.id).to_string());
        }
    }
    let friends: Vec<String> =
        contacts.iter().filter(|p| changes.availability.contains(&p.user.username)).map(|p| p.id.to_string()).collect();
    let lists: Vec<String> = if changes.conversation_list { vec![caller.id.to_string()] } else { vec![] };
    ok(json!({
        "friendavailabilitesof": friends,
        "conversationchangedof": conversations,
        "conversationlistchangedof": lists,
    }))
}

fn new_instance() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 10];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    bytes.iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect()
}

/// The caller's settings of a conversation, made (and kept) on first use.
async fn settings(
    state: &AppState,
    caller: &Caller,
    id: &ConversationId,
    peer: &Party,
) -> Result<ConversationProps, Refusal> {
    if let Some(props) = state.conversations.settings(id.as_str(), &caller.user.username).await? {
        return Ok(props);
    }
    let props = ConversationProps {
        conversation: id.to_string(),
        username: caller.user.username.clone(),
        peer: peer.user.username.clone(),
        instance: new_instance(),
        muted: false,
        favorite: false,
        hide_id: String::new(),
        color: "#ffffff".into(),
        cleared_through: 0,
        changed_ms: now_ms(),
    };
    state.conversations.save_settings(props.clone()).await?;
    Ok(props)
}

/// The messages of a conversation the caller has not cleared, oldest first, as `query`
/// narrows them.
async fn conversation_messages(
    state: &AppState,
    caller: &Caller,
    peer: &Party,
    props: &ConversationProps,
    mut query: HistoryQuery,
) -> Result<Vec<StoredMessage>, Refusal> {
    query.username = caller.user.username.clone();
    query.with = Some(peer.user.username.clone());
    let now = now_ms();
    let messages = state.archive.history(query).await?;
    Ok(messages
        .into_iter()
        .filter(|m| m.id > props.cleared_through && matches!(m.kind, MessageKind::Chat | MessageKind::Normal))
        .filter(|m| !expired(m, now))
        .collect())
}

/// The Ozeki fields a message carries when an Ozeki client added it.
fn ozeki_fields(message: &StoredMessage) -> Option<&Map<String, Value>> {
    message.data.as_ref()?.get("ozeki")?.as_object()
}

fn expired(message: &StoredMessage, now: i64) -> bool {
    let until = ozeki_fields(message).and_then(|f| f.get("ValidUntil")).and_then(Value::as_str);
    until.and_then(parse_ozeki_time).is_some_and(|until| until < now)
}

/// A message's Ozeki `ID`: the client's, or the archive id of one from another door.
fn message_id(message: &StoredMessage) -> String {
    match ozeki_fields(message).and_then(|f| f.get("ID")).and_then(Value::as_str) {
        Some(id) => id.to_owned(),
        None => message.id.to_string(),
    }
}

/// A message object (§1.4): as the Ozeki client added it, or one from another door with
/// `Data` = base64 of its body.
fn message_object(message: &StoredMessage) -> Value {
    let field = |name: &str| ozeki_fields(message).and_then(|f| f.get(name)).and_then(Value::as_str).map(str::to_owned);
    let data =
        field("Data").unwrap_or_else(|| base64::engine::general_purpose::STANDARD.encode(message.body.as_bytes()));
    json!({
        "ID": message_id(message),
        "Type": field("Type").unwrap_or_else(|| "Message".to_owned()),
        "Created": field("Created").unwrap_or_else(|| ozeki_time(message.stamp_ms)),
        "ValidUntil": field("ValidUntil").unwrap_or_else(|| NEVER.to_owned()),
        "Data": data,
    })
}

fn report_object(report: &ConversationReport, hosts_id: &str) -> Value {
    json!({
        "ID": report.id,
        "Type": report.kind,
        "Created": ozeki_time(report.created_ms),
        "userid": hosts_id,
        "messageids": report.message_ids,
    })
}

/// The conversation object (§1.4), with the caller's own settings only.
async fn conversation_object(
    state: &AppState,
    caller: &Caller,
    id: &ConversationId,
    peer: &Party,
    props: &ConversationProps,
) -> Result<Value, Refusal> {
    let last =
        conversation_messages(state, caller, peer, props, HistoryQuery { limit: 1, ..Default::default() }).await?;
    let reports = state.conversations.reports(id.as_str(), 0, 1).await?;
    let parties = [(caller.id.clone(), display_name(&caller.user)), (peer.id.clone(), display_name(&peer.user))];
    let lastaccess_ms = last.last().map_or(props.changed_ms, |m| m.stamp_ms.max(props.changed_ms));
    let latest = Latest {
        message_id: last.last().map(message_id).unwrap_or_default(),
        report_id: reports.last().map(|r| r.id.clone()).unwrap_or_default(),
        access_secs: lastaccess_ms / 1000,
    };
    Ok(conversation_json(id, parties, &latest, props, &caller.id))
}

/// What is newest in a conversation.
struct Latest {
    message_id: String,
    report_id: String,
    access_secs: i64,
}

fn conversation_json(
    id: &ConversationId,
    mut parties: [(OzekiUserId, String); 2],
    latest: &Latest,
    props: &ConversationProps,
    me: &OzekiUserId,
) -> Value {
    parties.sort();
    let me = me.as_str();
    json!({
        "id": id.as_str(),
        "isgroup": false,
        "participantids": parties.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
        "participants": parties.iter().map(|(id, name)| json!({"userid": id.as_str(), "username": name})).collect::<Vec<_>>(),
        "displayname": "",
        "lastmessageid": latest.message_id,
        "lastreportid": latest.report_id,
        "lastaccess": latest.access_secs,
        "secret": "",
        "instance": props.instance,
        "mutedby": if props.muted { vec![me] } else { vec![] },
        "favoriteby": if props.favorite { vec![me] } else { vec![] },
        "hiddenby": [],
        "properties": [{
            "userid": me,
            "ismuted": props.muted,
            "isfavorite": props.favorite,
            "hideid": props.hide_id,
            "listitembackgroundcolor": props.color,
        }],
    })
}

async fn conversation_list(state: &AppState, caller: &Caller) -> Outcome {
    let heads = state.feed.send(ConversationHeads { username: caller.user.username.clone() }).await.unwrap_or_default();
    let with_settings = state.conversations.all_settings(&caller.user.username).await?;
    let mut conversations = Vec::new();
    for p in candidates(state, caller).await? {
        let talked = heads.iter().any(|(peer, _)| *peer == p.user.username);
        let set = with_settings.iter().any(|s| s.peer == p.user.username);
        if !talked && !set {
            continue;
        }
        let id = ConversationId::between(&caller.id, &p.id);
        let props = settings(state, caller, &id, &p).await?;
        conversations.push(conversation_object(state, caller, &id, &p, &props).await?);
    }
    ok(json!({"conversations": conversations}))
}

fn text_field<'a>(request: &'a Value, name: &str) -> &'a str {
    request.get(name).and_then(Value::as_str).unwrap_or_default()
}

async fn add(state: &AppState, caller: &Caller, request: &Value) -> Outcome {
    let (_, peer) = peer_of(state, caller, request).await?;
    let raw = request
        .get("message")
        .and_then(Value::as_str)
        .ok_or_else(|| Refusal::error("message must be a JSON string holding {ID, Type, Created, ValidUntil, Data}"))?;
    let message: Value =
        serde_json::from_str(raw).map_err(|e| Refusal::error(format!("message is not a JSON object: {e}")))?;
    let field = |name: &str| message.get(name).and_then(Value::as_str).map(str::to_owned);
    let message_id = field("ID")
        .filter(|i| !i.trim().is_empty() && i.len() <= MAX_ID_BYTES)
        .ok_or_else(|| Refusal::error(format!("message.ID must be a string of 1 to {MAX_ID_BYTES} bytes")))?;
    let data = field("Data").ok_or_else(|| Refusal::error("message.Data must be a string"))?;
    let kind = field("Type").unwrap_or_else(|| "Message".to_owned());
    let created = field("Created").unwrap_or_else(|| ozeki_time(now_ms()));
    let valid_until = field("ValidUntil").unwrap_or_else(|| NEVER.to_owned());
    match parse_ozeki_time(&valid_until) {
        None => return Err(Refusal::error(format!("message.ValidUntil {valid_until:?} is not yyyy-MM-dd HH:mm:ss"))),
        Some(until) if until < now_ms() => {
            return Err(Refusal::error("the message expired already (ValidUntil has passed)"))
        }
        Some(_) => {}
    }
    // Other doors see the text when Data is base64 of UTF-8 text, else Data as it is.
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|text| !text.trim().is_empty() && !text.chars().any(|c| c.is_control() && !c.is_whitespace()));
    let body = decoded.unwrap_or_else(|| data.clone());
    check_message_body(&body, state.config.limits.max_message_chars)?;
    let ozeki = json!({"ID": message_id, "Type": kind, "Created": created, "ValidUntil": valid_until, "Data": data});
    let submit = Submit {
        message: NewMessage {
            from: caller.jid()?,
            to: peer.jid()?,
            kind: MessageKind::Chat,
            body,
            data: Some(json!({ "ozeki": ozeki })),
            client_id: Some(message_id.clone()),
            expires_ms: parse_ozeki_time(&valid_until),
        },
    };
    let stored = state.router.send(submit).await.map_err(|_| Refusal::error("the server is shutting down"))?;
    let stored = stored.map_err(|e| Refusal::error(e.to_string()))?;
    state.feed.do_send(Downloaded {
        username: caller.user.username.clone(),
        station: caller.station.clone(),
        peer: peer.user.username.clone(),
        through_id: stored.id,
    });
    ok(json!({"message": {"ID": message_id, "Type": kind, "Created": created, "ValidUntil": valid_until}}))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// `download`: from `firstmessageid` (inclusive) on.
    Forward,
    /// `downloadpartial`: up to `limit` before `lastmessageid`.
    Backward,
}

async fn download(state: &AppState, caller: &Caller, request: &Value, direction: Direction) -> Outcome {
    let (id, peer) = peer_of(state, caller, request).await?;
    let props = settings(state, caller, &id, &peer).await?;
    let date = |name: &str| parse_ozeki_time(text_field(request, name));
    let (messages, reports) = match direction {
        Direction::Forward => {
            // The date narrows the search (a second early: dates have no fractions).
            let since = date("firstmessagedate").map(|d| d - 1000);
            let query = HistoryQuery {
                start_ms: since,
                after: Some(props.cleared_through),
                limit: MAX_DOWNLOAD,
                ..Default::default()
            };
            let mut messages = conversation_messages(state, caller, &peer, &props, query).await?;
            let first = text_field(request, "firstmessageid");
            if let Some(at) = messages.iter().position(|m| !first.is_empty() && message_id(m) == first) {
                messages.drain(..at);
            }
            let since = date("firstreportdate").map_or(0, |d| d - 1000);
            let mut reports = state.conversations.reports(id.as_str(), since, MAX_DOWNLOAD).await?;
            let first = text_field(request, "firstreportid");
            if let Some(at) = reports.iter().position(|r| !first.is_empty() && r.id == first) {
                reports.drain(..at);
            }
            (messages, reports)
        }
        Direction::Backward => {
            let limit = match request.get("limit") {
                None | Some(Value::Null) => 50,
                Some(v) => v
                    .as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                    .filter(|n| (1..=MAX_DOWNLOAD as u64).contains(n))
                    .ok_or_else(|| Refusal::error(format!("limit must be 1 to {MAX_DOWNLOAD}")))?
                    as usize,
            };
            let until = date("lastmessagedate").map(|d| d + 999);
            let query = HistoryQuery { end_ms: until, limit: limit + 64, ..Default::default() };
            let mut messages = conversation_messages(state, caller, &peer, &props, query).await?;
            let last = text_field(request, "lastmessageid");
            if let Some(at) = messages.iter().position(|m| !last.is_empty() && message_id(m) == last) {
                messages.truncate(at);
            }
            let skip = messages.len().saturating_sub(limit);
            messages.drain(..skip);
            let mut reports = state.conversations.reports(id.as_str(), 0, MAX_DOWNLOAD).await?;
            let last = text_field(request, "lastreportid");
            if let Some(at) = reports.iter().position(|r| !last.is_empty() && r.id == last) {
                reports.truncate(at);
            }
            let skip = reports.len().saturating_sub(limit);
            reports.drain(..skip);
            (messages, reports)
        }
    };
    if let Some(newest) = messages.iter().map(|m| m.id).max() {
        state.feed.do_send(Downloaded {
            username: caller.user.username.clone(),
            station: caller.station.clone(),
            peer: peer.user.username.clone(),
            through_id: newest,
        });
    }
    let mut ids = std::collections::HashMap::new();
    for r in &reports {
        if !ids.contains_key(&r.username) {
            let id = party(state, &r.username).await?.map(|p| p.id.to_string()).unwrap_or_default();
            ids.insert(r.username.clone(), id);
        }
    }
    ok(json!({
        "conversationid": id.as_str(),
        "instance": props.instance,
        "messages": messages.iter().map(message_object).collect::<Vec<_>>(),
        "reports": reports.iter().map(|r| report_object(r, &ids[&r.username])).collect::<Vec<_>>(),
    }))
}

async fn viewed(state: &AppState, caller: &Caller, request: &Value) -> Outcome {
    let (id, peer) = peer_of(state, caller, request).await?;
    let ids = request
        .get("messageids")
        .and_then(Value::as_array)
        .ok_or_else(|| Refusal::error("messageids must be a list"))?;
    let ids: Vec<String> = ids.iter().filter_map(Value::as_str).map(str::to_owned).collect();
    if ids.is_empty() || ids.len() > MAX_DOWNLOAD || ids.iter().any(|i| i.is_empty() || i.len() > MAX_ID_BYTES) {
        return Err(Refusal::error(format!(
            "messageids must hold 1 to {MAX_DOWNLOAD} ids of 1 to {MAX_ID_BYTES} bytes"
        )));
    }
    let report = ConversationReport {
        id: random_hex(16),
        conversation: id.to_string(),
        username: caller.user.username.clone(),
        kind: "viewed".into(),
        created_ms: now_ms(),
        message_ids: ids.clone(),
    };
    state.conversations.add_report(report).await?;
    let sent = state.router.send(SendDisplayed { from: caller.jid()?, to: peer.jid()?, message_ids: ids }).await;
    sent.map_err(|_| Refusal::error("the server is shutting down"))?.map_err(|e| Refusal::error(e.to_string()))?;
    ok(json!({}))
}

async fn change(state: &AppState, caller: &Caller, request: &Value, setting: &str) -> Outcome {
    let (id, peer) = peer_of(state, caller, request).await?;
    let mut props = settings(state, caller, &id, &peer).await?;
    match setting {
        "clear" => {
            let newest =
                conversation_messages(state, caller, &peer, &props, HistoryQuery { limit: 1, ..Default::default() })
                    .await?;
            props.cleared_through = newest.last().map_or(props.cleared_through, |m| m.id);
            props.instance = new_instance();
        }
        "favorite" | "unfavorite" => props.favorite = setting == "favorite",
        "mute" | "unmute" => props.muted = setting == "mute",
        "hide" => {
            let hide_id = text_field(request, "hideid");
            if hide_id.is_empty() || hide_id.len() > MAX_ID_BYTES {
                return Err(Refusal::error(format!("hideid must be 1 to {MAX_ID_BYTES} bytes")));
            }
            props.hide_id = hide_id.to_owned();
        }
        "unhide" => props.hide_id.clear(),
        _ => {
            let color = text_field(request, "color");
            let valid = color.len() == 7 && color.starts_with('#') && color[1..].chars().all(|c| c.is_ascii_hexdigit());
            if !valid {
                return Err(Refusal::error(format!("color {color:?} is not #rrggbb")));
            }
            props.color = color.to_ascii_lowercase();
        }
    }
    props.changed_ms = now_ms();
    state.conversations.save_settings(props.clone()).await?;
    state.feed.do_send(ConversationListChanged { username: caller.user.username.clone() });
    let conversation = conversation_object(state, caller, &id, &peer, &props).await?;
    ok(json!({ "conversation": conversation }))
}

async fn blocklist(state: &AppState, caller: &Caller) -> Outcome {
    let blocked = state.router.send(Blocklist { username: caller.user.username.clone() }).await.unwrap_or_default();
    let mut users = Vec::new();
    for name in blocked {
        if let Some(p) = party(state, &name).await? {
            users.push(p.id.to_string());
        }
    }
    let hidden: Vec<String> = state
        .conversations
        .all_settings(&caller.user.username)
        .await?
        .into_iter()
        .filter(|p| !p.hide_id.is_empty())
        .map(|p| p.conversation)
        .collect();
    ok(json!({"blockedusers": users, "blockedconversations": hidden}))
}

async fn workspace(state: &AppState, caller: &Caller, request: &Value) -> Outcome {
    let name = text_field(request, "workspacename").trim().to_ascii_lowercase();
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    if !valid {
        return Err(Refusal::error(format!("workspacename {name:?} is not a host name such as alice.ozeki.chat")));
    }
    let set = state.accounts.set_property(caller.user.username.clone(), "ozeki.workspace".into(), name).await;
    set?;
    ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "aa68d2204cb2bb85f2de3b9aad0d86d7";
    const ADMIN: &str = "d574638619cbff603bf857164c47e850";

    fn user(name: &str, full: &str) -> UserRecord {
        UserRecord {
            username: name.into(),
            kind: Default::default(),
            password_hash: String::new(),
            name: full.into(),
            email: format!("{name}@ozeki.hu"),
            properties: vec![("ozeki.rsakey".into(), "-----BEGIN RSA PRIVATE KEY-----x".into())],
            created_ms: 0,
            modified_ms: 0,
            locked: false,
            scram: Vec::new(),
        }
    }

    #[test]
    fn the_conversation_object_has_the_vendors_layout_with_the_callers_settings() {
        let (alice, admin) = (OzekiUserId::parse(ALICE).unwrap(), OzekiUserId::parse(ADMIN).unwrap());
        let id = ConversationId::between(&admin, &alice);
        let props = ConversationProps {
            conversation: id.to_string(),
            username: "alice".into(),
            peer: "admin".into(),
            instance: "PqjfKSn7V8".into(),
            muted: false,
            favorite: true,
            hide_id: String::new(),
            color: "#ffffff".into(),
            cleared_through: 0,
            changed_ms: 0,
        };
        let latest = Latest { message_id: "g-1".into(), report_id: String::new(), access_secs: 1_709_898_645 };
        let parties = [(admin.clone(), "Administrator".to_owned()), (alice.clone(), "Alice".to_owned())];
        let object = conversation_json(&id, parties, &latest, &props, &alice);
        assert_eq!(
            object,
            json!({
                "id": "8ca16186c36a4e0a1ef2096e6c60b613", "isgroup": false,
                "participantids": [ALICE, ADMIN],
                "participants": [{"userid": ALICE, "username": "Alice"}, {"userid": ADMIN, "username": "Administrator"}],
                "displayname": "", "lastmessageid": "g-1", "lastreportid": "", "lastaccess": 1_709_898_645,
                "secret": "", "instance": "PqjfKSn7V8", "mutedby": [], "favoriteby": [ALICE], "hiddenby": [],
                "properties": [{"userid": ALICE, "ismuted": false, "isfavorite": true, "hideid": "",
                    "listitembackgroundcolor": "#ffffff"}]
            })
        );
    }

    #[test]
    fn the_login_reply_names_every_url_under_the_callers_base() {
        let alice = user("alice", "Ozeki Alice");
        let id = OzekiUserId::from_email(&alice.email).unwrap();
        let reply = login_json("http://localhost/ozeki", &alice, &id, "801c91e6466a1ab34945d73ae4f762c6");
        assert_eq!(reply["registration"], "true", "a string, not a boolean");
        assert_eq!(reply["userid"], id.as_str());
        assert_eq!(reply["fullname"], "Ozeki Alice");
        assert_eq!(reply["rsakey"], "-----BEGIN RSA PRIVATE KEY-----x", "echoed unchanged");
        assert_eq!(reply["listeners"], json!({"ws": "ws://localhost/ws"}));
        assert_eq!(reply["urls"]["login"], "http://localhost/ozeki/index.php?srv=chatserver&api=chatlogin");
        for key in
            ["availability", "conversation", "conversationgroup", "blocklist", "fileserver", "friends", "notification"]
        {
            assert!(reply["urls"][key]
                .as_str()
                .unwrap()
                .starts_with("http://localhost/ozeki/index.php?srv=chatserver&api=chat"));
        }
    }

    fn stored(body: &str, data: Option<Value>) -> StoredMessage {
        StoredMessage {
            id: 42,
            stamp_ms: 1_764_590_400_000,
            kind: MessageKind::Chat,
            from_user: "bob".into(),
            from_resource: None,
            to_user: "alice".into(),
            to_resource: None,
            body: body.into(),
            data,
            deliver_to: None,
            expires_ms: None,
        }
    }

    #[test]
    fn a_message_object_is_the_clients_own_or_another_doors_body_in_base64() {
        let theirs = stored("héllo", None);
        assert_eq!(
            message_object(&theirs),
            json!({"ID": "42", "Type": "Message", "Created": "2025-12-01 12:00:00", "ValidUntil": NEVER, "Data": "aMOpbGxv"})
        );
        let ozeki = json!({"ozeki": {"ID": "6f1c…", "Type": "Message", "Created": "2024-03-08 11:50:45",
            "ValidUntil": "2024-03-15 11:50:45", "Data": "b64-ciphertext"}});
        let mine = stored("b64-ciphertext", Some(ozeki.clone()));
        assert_eq!(message_object(&mine), ozeki["ozeki"], "echoed as added, Data untouched");
        assert!(expired(&mine, 1_764_590_400_000));
        assert!(!expired(&theirs, i64::MAX), "another door's message does not expire");
    }
}
