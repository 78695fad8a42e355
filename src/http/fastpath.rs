//! Fastpath over HTTP: the admin API of workgroups (`/restapi/v1/workgroups…`, and ofchat's
//! `/restapi/v1/ask/admin…` aliases), the agents' side on their stream
//! (`/restapi/v1/chat/{streamid}/assists…`, `…/offer/{offerId}`), and the visitors' side
//! (`/restapi/v1/ask…`, no account: a token from `POST /ask` proves the visitor).
//!
//! Unlike ofchat, `POST /ask` answers 202 at once with the visitor's place and token; the
//! queue's progress and the room invitation arrive as `chatapi.ask` events on
//! `GET /sse/{userID}?token=` or `GET /ws?token=` (see `crate::sse`, `crate::ws`).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_actors::clock::{format_stamp, now_ms};
use switchboard_actors::fastpath::registry::{
    AgentQueues, AnswerOffer, Ask, DeleteWorkgroup, GetWorkgroup, ListWorkgroups, MemberOf, SaveWorkgroup, SetAgent,
    VisitorCall,
};
use switchboard_actors::fastpath::visitors::{VisitorAction, VisitorReply};
use switchboard_actors::fastpath::workgroup::QueueView;
use switchboard_actors::fastpath::{check_visitor_id, check_workgroup_name, WorkgroupRecord};

use crate::auth::Admin;
use crate::auth::{visitor_token, CallerStation};
use crate::config::secs;
use crate::error::ApiError;
use crate::inbound::{check_message_body, parse_username};
use crate::state::AppState;

/// Longest question, e-mail address and nickname a visitor may give, in characters.
const MAX_QUESTION_CHARS: usize = 2000;
const MAX_FIELD_CHARS: usize = 256;
/// Most chats `GET /workgroups/{name}/chats` lists.
const MAX_CHATS_LISTED: usize = 500;
/// Longest timeout a workgroup may set, in seconds (one day).
const MAX_TIMEOUT_SECS: f64 = 86_400.0;

/// A workgroup's name from a path or body: `name` or `name@workgroup.{domain}`.
fn parse_workgroup(state: &AppState, raw: &str) -> Result<String, ApiError> {
    let host = state.fastpath_options.host();
    let name = match raw.split_once('@') {
        Some((name, domain)) if domain == host => name,
        Some(_) => return Err(ApiError::bad_request(format!("workgroup {raw:?} is not on {host}"))),
        None => raw,
    };
    check_workgroup_name(name)?;
    Ok(name.to_owned())
}

// ---- administration ----------------------------------------------------------------------

/// Members as a list, or ofchat's `"u1,u2"` / `"u1 u2"` text.
#[derive(Deserialize)]
#[serde(untagged)]
enum Members {
    List(Vec<String>),
    Text(String),
}

impl Members {
    fn names(self) -> Vec<String> {
        match self {
            Members::List(list) => list,
            Members::Text(text) => {
                text.split([',', ' ', '\n', '\t']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkgroupBody {
    name: Option<String>,
    description: Option<String>,
    members: Option<Members>,
    /// User groups whose people are agents too.
    member_groups: Option<Members>,
    open: Option<bool>,
    max_chats: Option<u32>,
    /// Seconds.
    offer_timeout: Option<f64>,
    /// Seconds.
    request_timeout: Option<f64>,
}

fn timeout_ms(key: &str, value: f64) -> Result<i64, ApiError> {
    if !(value.is_finite() && value > 0.0 && value <= MAX_TIMEOUT_SECS) {
        return Err(ApiError::bad_request(format!("{key} must be a number of seconds in (0, {MAX_TIMEOUT_SECS}]")));
    }
    Ok(secs(value).as_millis().max(1) as i64)
}

/// Applies a body to a record (a new one with the configured defaults, or the current one).
fn apply_body(state: &AppState, record: &mut WorkgroupRecord, body: WorkgroupBody) -> Result<(), ApiError> {
    if let Some(description) = body.description {
        if description.chars().count() > MAX_QUESTION_CHARS {
            return Err(ApiError::bad_request(format!("description is longer than {MAX_QUESTION_CHARS} characters")));
        }
        record.description = description;
    }
    if let Some(members) = body.members {
        record.members = members
            .names()
            .iter()
            .map(|m| parse_username(m, state.domain()))
            .collect::<Result<_, _>>()
            .map_err(|e| ApiError::bad_request(format!("members: {}", e.message)))?;
    }
    if let Some(groups) = body.member_groups {
        let names = groups.names();
        if let Some(missing) = names.iter().find(|g| !state.groups.index().exists(g)) {
            return Err(super::groups::group_not_found(missing));
        }
        record.member_groups = names.into_iter().collect();
    }
    if let Some(open) = body.open {
        record.open = open;
    }
    if let Some(max_chats) = body.max_chats {
        if !(1..=1000).contains(&max_chats) {
            return Err(ApiError::bad_request("maxChats must be between 1 and 1000"));
        }
        record.max_chats = max_chats;
    }
    if let Some(value) = body.offer_timeout {
        record.offer_timeout_ms = timeout_ms("offerTimeout", value)?;
    }
    if let Some(value) = body.request_timeout {
        record.request_timeout_ms = timeout_ms("requestTimeout", value)?;
    }
    Ok(())
}

fn new_record(state: &AppState, name: String) -> WorkgroupRecord {
    let defaults = &state.config.fastpath;
    let now = now_ms();
    WorkgroupRecord {
        name,
        description: String::new(),
        members: Default::default(),
        member_groups: Default::default(),
        open: true,
        max_chats: defaults.max_chats,
        offer_timeout_ms: secs(defaults.offer_timeout_secs).as_millis() as i64,
        request_timeout_ms: secs(defaults.request_timeout_secs).as_millis() as i64,
        created_ms: now,
        modified_ms: now,
    }
}

fn workgroup_json(state: &AppState, record: &WorkgroupRecord) -> Value {
    super::entities::workgroup_json(record, &state.hosts)
}

async fn create(state: &AppState, body: WorkgroupBody) -> Result<HttpResponse, ApiError> {
    let name = body.name.clone().ok_or_else(|| ApiError::bad_request("a workgroup needs a \"name\""))?;
    let name = parse_workgroup(state, &name)?;
    let mut record = new_record(state, name);
    apply_body(state, &mut record, body)?;
    let saved = state.fastpath.send(SaveWorkgroup { record, create: true }).await??;
    Ok(HttpResponse::Created().json(workgroup_json(state, &saved)))
}

async fn update(state: &AppState, name: &str, body: WorkgroupBody) -> Result<HttpResponse, ApiError> {
    let name = parse_workgroup(state, name)?;
    if let Some(other) = &body.name {
        if parse_workgroup(state, other)? != name {
            return Err(ApiError::bad_request("a workgroup cannot be renamed: \"name\" must match the path"));
        }
    }
    let mut record = state.fastpath.send(GetWorkgroup { name }).await??;
    apply_body(state, &mut record, body)?;
    record.modified_ms = now_ms();
    let saved = state.fastpath.send(SaveWorkgroup { record, create: false }).await??;
    Ok(HttpResponse::Ok().json(workgroup_json(state, &saved)))
}

async fn delete(state: &AppState, name: &str) -> Result<HttpResponse, ApiError> {
    let name = parse_workgroup(state, name)?;
    state.fastpath.send(DeleteWorkgroup { name }).await??;
    Ok(HttpResponse::Ok().finish())
}

/// `GET /restapi/v1/workgroups` → `{"workgroups":[…]}`.
pub async fn admin_list(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let records = state.fastpath.send(ListWorkgroups).await??;
    let list: Vec<Value> = records.iter().map(|r| workgroup_json(&state, r)).collect();
    Ok(HttpResponse::Ok().json(json!({ "workgroups": list })))
}

/// `POST /restapi/v1/workgroups` → 201 with the workgroup.
pub async fn admin_create(
    _: Admin,
    state: web::Data<AppState>,
    body: web::Json<WorkgroupBody>,
) -> Result<HttpResponse, ApiError> {
    create(&state, body.into_inner()).await
}

/// `GET /restapi/v1/workgroups/{name}`.
pub async fn admin_get(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = parse_workgroup(&state, &path)?;
    let record = state.fastpath.send(GetWorkgroup { name }).await??;
    Ok(HttpResponse::Ok().json(workgroup_json(&state, &record)))
}

/// `PUT /restapi/v1/workgroups/{name}`: the fields given replace the current ones.
pub async fn admin_update(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<WorkgroupBody>,
) -> Result<HttpResponse, ApiError> {
    update(&state, &path, body.into_inner()).await
}

/// `DELETE /restapi/v1/workgroups/{name}`.
pub async fn admin_delete(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    delete(&state, &path).await
}

/// `POST /restapi/v1/ask/admin` (ofchat): `{"name","description","members":"u1,u2"}`.
pub async fn ask_admin_create(
    _: Admin,
    state: web::Data<AppState>,
    body: web::Json<WorkgroupBody>,
) -> Result<HttpResponse, ApiError> {
    create(&state, body.into_inner()).await
}

/// `POST /restapi/v1/ask/admin/{wg}` (ofchat): the body (`"u1,u2"` or space-separated)
/// replaces the members.
pub async fn ask_admin_members(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    raw: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let text = std::str::from_utf8(&raw).map_err(|_| ApiError::bad_request("members must be UTF-8 text"))?;
    let members = match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(list)) => {
            Members::List(list.into_iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        }
        _ => Members::Text(text.to_owned()),
    };
    let body = WorkgroupBody {
        name: None,
        description: None,
        members: Some(members),
        member_groups: None,
        open: None,
        max_chats: None,
        offer_timeout: None,
        request_timeout: None,
    };
    update(&state, &path, body).await
}

/// `DELETE /restapi/v1/ask/admin/{wg}` (ofchat).
pub async fn ask_admin_delete(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    delete(&state, &path).await
}

/// `GET /restapi/v1/workgroups/{name}/chats` → the chats it set up, newest first.
pub async fn admin_chats(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = parse_workgroup(&state, &path)?;
    state.fastpath.send(GetWorkgroup { name: name.clone() }).await??;
    let chats = state.archive.workgroup_chats(name, MAX_CHATS_LISTED).await?;
    let list: Vec<Value> = chats.iter().map(|c| chat_json(&state, c)).collect();
    Ok(HttpResponse::Ok().json(json!({ "chats": list })))
}

fn chat_json(state: &AppState, chat: &switchboard_actors::fastpath::ChatRecord) -> Value {
    json!({
        "room": format!("{}@{}", chat.room, state.muc.host()),
        "visitor": chat.visitor,
        "agent": chat.agent,
        "question": chat.question,
        "email": chat.email,
        "started": format_stamp(chat.started_ms),
        "ended": chat.ended_ms.map(format_stamp),
    })
}

/// `GET /restapi/v1/workgroups/{name}/chats/{room}` → the chat and its transcript.
pub async fn admin_transcript(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (name, room) = path.into_inner();
    let name = parse_workgroup(&state, &name)?;
    let room = room.split('@').next().unwrap_or_default().to_owned();
    let chat = state.archive.workgroup_chat(room.clone()).await?.filter(|c| c.workgroup == name).ok_or_else(|| {
        ApiError::not_found("ChatNotFoundException", format!("workgroup '{name}' has no chat '{room}'"))
    })?;
    let messages = state.archive.room_messages(room, chat.started_ms, state.config.history.max_limit).await?;
    let until = chat.ended_ms.unwrap_or(i64::MAX);
    let transcript: Vec<Value> = messages
        .iter()
        .filter(|m| m.stamp_ms <= until)
        .map(|m| json!({ "nick": m.nick, "body": m.body, "stamp": format_stamp(m.stamp_ms) }))
        .collect();
    let mut body = chat_json(&state, &chat);
    body["messages"] = json!(transcript);
    Ok(HttpResponse::Ok().json(body))
}

// ---- agents ------------------------------------------------------------------------------

/// `GET /restapi/v1/chat/{streamid}/assists` → `{"workgroup":[…]}`: where the caller is an agent.
pub async fn assists(
    CallerStation { stream: station, .. }: CallerStation,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let names = state.fastpath.send(MemberOf { username: station.username }).await??;
    let host = state.fastpath_options.host();
    let list: Vec<String> = names.iter().map(|n| format!("{n}@{host}")).collect();
    Ok(HttpResponse::Ok().json(json!({ "workgroup": list })))
}

fn queue_json(queue: &QueueView) -> Value {
    let users: Vec<Value> = queue
        .waiting
        .iter()
        .map(|w| {
            json!({
                "userID": w.user_id,
                "queuePosition": w.position,
                "estimatedTime": w.remaining_secs,
                "joinDate": format_stamp(w.joined_ms),
            })
        })
        .collect();
    let agents: Vec<Value> = queue
        .agents
        .iter()
        .map(|a| json!({ "name": a.name, "available": a.available, "currentChats": a.chats, "offerPending": a.offer_pending }))
        .collect();
    json!({
        "name": queue.name,
        "jid": queue.jid,
        "status": queue.status,
        "averageWaitTime": queue.average_wait_secs,
        "oldestEntry": queue.waiting.first().map(|w| format_stamp(w.joined_ms)),
        "maxChats": queue.max_chats,
        "currentChats": queue.current_chats,
        "users": { "user": users },
        "agents": agents,
    })
}

/// `GET /restapi/v1/chat/{streamid}/assists/queues` → the queues of the caller's workgroups.
pub async fn queues(
    CallerStation { stream: station, .. }: CallerStation,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let queues = state.fastpath.send(AgentQueues { agent: station.username }).await??;
    let list: Vec<Value> = queues.iter().map(queue_json).collect();
    Ok(HttpResponse::Ok().json(json!({ "queue": list })))
}

async fn set_agent(
    CallerStation { stream, .. }: CallerStation,
    state: &AppState,
    path: (String, String),
    online: bool,
) -> Result<HttpResponse, ApiError> {
    let (_, workgroup) = path;
    let workgroup = parse_workgroup(state, &workgroup)?;
    state.fastpath.send(SetAgent { workgroup, agent: stream.username, online }).await??;
    Ok(HttpResponse::Ok().finish())
}

/// `POST /restapi/v1/chat/{streamid}/assists/{workgroup}`: online as agent (403 if not a member).
pub async fn agent_online(
    station: CallerStation,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    set_agent(station, &state, path.into_inner(), true).await
}

/// `DELETE /restapi/v1/chat/{streamid}/assists/{workgroup}`: offline as agent.
pub async fn agent_offline(
    station: CallerStation,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    set_agent(station, &state, path.into_inner(), false).await
}

async fn answer(
    CallerStation { stream, .. }: CallerStation,
    state: &AppState,
    path: (String, String),
    accept: bool,
) -> Result<HttpResponse, ApiError> {
    let (_, offer_id) = path;
    state.fastpath.send(AnswerOffer { agent: stream.username, offer_id, accept }).await??;
    Ok(HttpResponse::Ok().finish())
}

/// `POST /restapi/v1/chat/{streamid}/offer/{offerId}`: accept (409 if not the caller's
/// pending offer, 404 if unknown).
pub async fn accept_offer(
    station: CallerStation,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    answer(station, &state, path.into_inner(), true).await
}

/// `DELETE /restapi/v1/chat/{streamid}/offer/{offerId}`: reject.
pub async fn reject_offer(
    station: CallerStation,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    answer(station, &state, path.into_inner(), false).await
}

// ---- visitors ----------------------------------------------------------------------------

/// A string field of the ask body, trimmed; `None` if absent or blank.
fn text_field(body: &Value, key: &str) -> Result<Option<String>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
        Some(_) => Err(ApiError::bad_request(format!("\"{key}\" must be a string"))),
    }
}

fn limit_chars(key: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.chars().count() > max {
        return Err(ApiError::bad_request(format!("\"{key}\" is longer than {max} characters")));
    }
    Ok(())
}

/// `POST /restapi/v1/ask` `{"emailAddress","userID","question","workgroup","nickname"?}` →
/// 202 `{"userID","position","estimatedTime","token",…}`.
pub async fn ask(state: web::Data<AppState>, body: web::Json<Value>) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if !body.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    let required = ["emailAddress", "userID", "question", "workgroup"];
    let mut values = Vec::new();
    let mut missing = Vec::new();
    for key in required {
        match text_field(&body, key)? {
            Some(value) => values.push(value),
            None => missing.push(key),
        }
    }
    if !missing.is_empty() {
        return Err(ApiError::bad_request(format!("missing or empty fields: {}", missing.join(", "))));
    }
    let [email, user_id, question, workgroup]: [String; 4] = values.try_into().expect("four required fields");
    check_visitor_id(&user_id)?;
    if user_id == "admin" {
        return Err(ApiError::bad_request("userID 'admin' is reserved (it names /restapi/v1/ask/admin)"));
    }
    limit_chars("emailAddress", &email, MAX_FIELD_CHARS)?;
    limit_chars("question", &question, MAX_QUESTION_CHARS)?;
    let nickname = text_field(&body, "nickname")?.unwrap_or_else(|| user_id.clone());
    limit_chars("nickname", &nickname, MAX_FIELD_CHARS)?;
    let workgroup = parse_workgroup(&state, &workgroup)?;
    let (waiting, token) = state
        .fastpath
        .send(Ask { workgroup: workgroup.clone(), user_id: user_id.clone(), nickname, email, question, user: None })
        .await??;
    Ok(HttpResponse::Accepted().json(json!({
        "userID": user_id,
        "workgroup": format!("{workgroup}@{}", state.fastpath_options.host()),
        "position": waiting.position,
        "estimatedTime": waiting.remaining_secs,
        "token": token,
        "events": {
            "sse": format!("/sse/{user_id}?token={token}"),
            "websocket": format!("/ws?token={token}"),
        },
    })))
}

/// Sends a visitor's action with the request's token (401 without one).
pub async fn visitor_call(
    state: &AppState,
    req: &HttpRequest,
    user_id: String,
    action: VisitorAction,
) -> Result<VisitorReply, ApiError> {
    let token = visitor_token(req).ok_or_else(|| {
        ApiError::unauthorized(
            "a visitor token is needed (?token= or Authorization: Bearer, from POST /restapi/v1/ask)",
        )
    })?;
    Ok(state.fastpath.send(VisitorCall { user_id, token, action }).await??)
}

/// `GET /restapi/v1/ask/{userID}` → `{"inQueue","queuePosition","queueRemainingTime","room",…}`
/// (-1 where there is no queue position).
pub async fn visitor_status(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user_id = path.into_inner();
    let VisitorReply::Status(status) = visitor_call(&state, &req, user_id.clone(), VisitorAction::Status).await? else {
        return Err(ApiError::internal("unexpected reply to a status request"));
    };
    Ok(HttpResponse::Ok().json(json!({
        "userID": user_id,
        "workgroupJID": status.workgroup,
        "inQueue": status.in_queue,
        "queuePosition": status.position.map_or(-1, |p| p as i64),
        "queueRemainingTime": status.remaining_secs.unwrap_or(-1),
        "room": status.room,
        "inRoom": status.in_room,
    })))
}

/// `DELETE /restapi/v1/ask/{userID}`: depart the queue, or leave the room; the token ends.
pub async fn visitor_leave(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    visitor_call(&state, &req, path.into_inner(), VisitorAction::Leave).await?;
    Ok(HttpResponse::Ok().finish())
}

/// `POST /restapi/v1/ask/{userID}`: enter the chat room an agent opened (409 before that).
pub async fn visitor_join(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    visitor_call(&state, &req, path.into_inner(), VisitorAction::JoinRoom).await?;
    Ok(HttpResponse::Ok().finish())
}

/// `PUT /restapi/v1/ask/{userID}` (body text): post a message to the chat room.
pub async fn visitor_say(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    raw: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let text = std::str::from_utf8(&raw).map_err(|_| ApiError::bad_request("message body is not valid UTF-8"))?;
    check_message_body(text, state.config.limits.max_message_chars)?;
    visitor_call(&state, &req, path.into_inner(), VisitorAction::Say(text.to_owned())).await?;
    Ok(HttpResponse::Ok().finish())
}
