//! The Ozeki 10 HTTP API at `/api`, for HTTP API users (`specs/vendor_apis.md` §1.5, §1.7),
//! in both of its forms:
//!
//! - the REST form the vendor's client library speaks: `?action=sendmsg|receivemsg|
//!   deletemsg|markmsg`, HTTP Basic as the HTTP user, JSON bodies, replies in the
//!   `{"http_code","response_code","response_msg","data"}` envelope;
//! - the URL form: `command=SendMessage|ReceiveMessage` (or `action=sendmessage|
//!   receivemessage`) with `Username`, `Password` and the other parameters in the query or a
//!   form-encoded body, names in any case; replies in XML (default), HTML or JSON.
//!
//! Only accounts of kind `http` may use it (403 for others). What they send is an ordinary
//! message of the core; what they keep of it, and their inbox, is the core's `Mailbox`.

use actix_web::http::header::{self, HeaderMap};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use serde_json::{json, Value};
use switchboard_actors::clock::now_ms;
use switchboard_actors::mailbox::SUCCESS;
use switchboard_actors::model::mailbox::{Folder, Mail, MailAction, ReportRequests};
use switchboard_actors::model::records::AccountKind;
use switchboard_actors::random::hex;

use super::recipient::{self, Account};
use super::render::{self, parse_ozeki_time, UrlFormat};
use crate::error::ApiError;
use crate::inbound::{check_message_body, read_limited_body};
use crate::state::AppState;

/// Most tags one message may carry.
const MAX_TAGS: usize = 50;
/// Longest client-made message id, in bytes.
const MAX_MESSAGE_ID_BYTES: usize = 128;
/// Longest station name a sender may give itself, in bytes.
const MAX_STATION_BYTES: usize = 256;

/// The query and form parameters, names lower-cased (the URL form's names are in any case).
struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

fn parse_params(raw: &str) -> Result<Vec<(String, String)>, ApiError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(raw).map_err(|e| ApiError::bad_request(format!("unreadable parameters: {e}")))?;
    Ok(pairs.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect())
}

/// `GET|POST /api`.
pub async fn api(req: HttpRequest, payload: web::Payload, state: web::Data<AppState>) -> HttpResponse {
    let limit = state.config.limits.max_body_bytes;
    let mut params = match parse_params(req.query_string()) {
        Ok(p) => p,
        Err(e) => return rest_error(&e),
    };
    let body = match read_limited_body(payload, limit).await {
        Ok(body) => body,
        Err(e) => return rest_error(&e),
    };
    let form = content_type(req.headers()).starts_with("application/x-www-form-urlencoded");
    if req.method() == Method::POST && form {
        match std::str::from_utf8(&body).map_err(|_| ApiError::bad_request("the form body is not UTF-8")) {
            Ok(text) => match parse_params(text) {
                Ok(more) => params.extend(more),
                Err(e) => return rest_error(&e),
            },
            Err(e) => return rest_error(&e),
        }
    }
    let params = Params(params);
    let command = params.get("command").map(str::to_ascii_lowercase);
    let action = params.get("action").map(str::to_ascii_lowercase);
    let verb = command.clone().or(action.clone()).unwrap_or_default();
    match verb.as_str() {
        "sendmessage" | "receivemessage" => url_form(&req, &params, &verb, &state).await,
        "sendmsg" | "receivemsg" | "deletemsg" | "markmsg" => {
            match rest_form(&req, &params, &verb, &body, &state).await {
                Ok(reply) => reply,
                Err(e) => rest_error(&e),
            }
        }
        "" => rest_error(&ApiError::bad_request(
            "no action given: use action=sendmsg, receivemsg, deletemsg or markmsg, \
             or command=SendMessage or ReceiveMessage",
        )),
        other => rest_error(&ApiError::bad_request(format!(
            "unknown action {other:?}: use sendmsg, receivemsg, deletemsg, markmsg, SendMessage or ReceiveMessage"
        ))),
    }
}

fn content_type(headers: &HeaderMap) -> String {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase()
}

/// The REST form's answer to a refused request.
fn rest_error(error: &ApiError) -> HttpResponse {
    let code = match error.status {
        StatusCode::UNAUTHORIZED => "AUTHENTICATION_FAILED",
        StatusCode::FORBIDDEN => "FORBIDDEN",
        StatusCode::PAYLOAD_TOO_LARGE => "PAYLOAD_TOO_LARGE",
        StatusCode::TOO_MANY_REQUESTS => "TOO_MANY_REQUESTS",
        StatusCode::NOT_FOUND => "NOT_FOUND",
        s if s.is_server_error() => "SERVER_ERROR",
        _ => "INVALID_REQUEST",
    };
    let body = render::envelope(error.status.as_u16(), code, &error.message, json!({}));
    let mut reply = HttpResponse::build(error.status);
    if error.status == StatusCode::UNAUTHORIZED {
        reply.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"switchboard\""));
    }
    reply.json(body)
}

/// The HTTP API user the credentials name: the password must match and the account must be
/// of kind `http`.
async fn http_user(state: &AppState, username: &str, password: &str) -> Result<String, ApiError> {
    let username = username.trim().to_lowercase();
    let caller = state.auth.verify(&username, password).await?;
    let account = state.accounts.find(&caller.username).await?.ok_or_else(|| ApiError::user_not_found(&username))?;
    if account.kind != AccountKind::Http {
        return Err(ApiError::forbidden(format!(
            "'{username}' is not an HTTP API user (create one with kind \"http\" in the admin API)"
        )));
    }
    Ok(caller.username)
}

/// `Authorization: Basic` credentials, if the request has them.
fn basic_credentials(req: &HttpRequest) -> Option<Result<(String, String), ApiError>> {
    let value = req.headers().get(header::AUTHORIZATION)?;
    let parsed = (|| {
        let value = value.to_str().ok()?;
        let encoded = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))?;
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        Some((user.to_owned(), password.to_owned()))
    })();
    Some(parsed.ok_or_else(|| ApiError::unauthorized("the Authorization header is not valid HTTP Basic")))
}

/// Credentials from the `Username` / `Password` parameters, else from Basic auth.
fn credentials(req: &HttpRequest, params: &Params) -> Result<(String, String), ApiError> {
    if let (Some(user), Some(password)) = (params.get("username"), params.get("password")) {
        return Ok((user.to_owned(), password.to_owned()));
    }
    basic_credentials(req)
        .unwrap_or_else(|| Err(ApiError::unauthorized("credentials are missing: HTTP Basic, or Username and Password")))
}

// ---------------------------------------------------------------------------------------
// The REST form.

async fn rest_form(
    req: &HttpRequest,
    params: &Params,
    action: &str,
    body: &[u8],
    state: &AppState,
) -> Result<HttpResponse, ApiError> {
    let (username, password) = credentials(req, params)?;
    let owner = http_user(state, &username, &password).await?;
    let data = match action {
        "sendmsg" => rest_send(state, &owner, &json_body(body)?).await?,
        "receivemsg" => rest_receive(state, &owner, params).await?,
        "deletemsg" => rest_file(state, &owner, &json_body(body)?, MailAction::Delete).await?,
        _ => rest_file(state, &owner, &json_body(body)?, MailAction::Mark).await?,
    };
    Ok(HttpResponse::Ok().json(data))
}

fn json_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("the request body is empty: a JSON object is expected"));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}

async fn rest_send(state: &AppState, owner: &str, body: &Value) -> Result<Value, ApiError> {
    let items = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::bad_request("the body must be {\"messages\": [ … ]}"))?;
    let most = state.config.ozeki.max_messages_per_request;
    if items.len() > most {
        return Err(ApiError::too_large(format!("{} messages in one request; at most {most}", items.len())));
    }
    let mut drafts = Vec::with_capacity(items.len());
    for item in items {
        drafts.push(rest_draft(state, owner, item).await);
    }
    let sent = state.mailbox.send_all(owner, drafts).await?;
    let success = sent.iter().filter(|m| m.status.as_deref() == Some(SUCCESS)).count();
    let messages: Vec<Value> = sent.iter().map(|m| render::message_object(&state.hosts, m)).collect();
    let data = json!({
        "total_count": sent.len(),
        "success_count": success,
        "failed_count": sent.len() - success,
        "messages": messages,
    });
    let (code, text) = if success == sent.len() {
        ("SUCCESS", format!("{success} of {} messages accepted", sent.len()))
    } else {
        ("PARTIAL_SUCCESS", format!("{success} of {} messages accepted; see each message's status", sent.len()))
    };
    let code = if success == 0 && !sent.is_empty() { "FAILED" } else { code };
    Ok(render::envelope(200, code, &text, data))
}

/// A message of a `sendmsg` body as a draft, with the reason it cannot be sent, if any.
async fn rest_draft(state: &AppState, owner: &str, item: &Value) -> (Mail, Option<String>) {
    let text_of = |key: &str| item.get(key).and_then(Value::as_str).map(str::to_owned);
    let mut problems: Vec<String> = Vec::new();
    if !item.is_object() {
        problems.push("a message must be a JSON object".to_owned());
    }
    let message_id = match text_of("message_id") {
        Some(id) if !id.trim().is_empty() && id.len() <= MAX_MESSAGE_ID_BYTES => id,
        Some(_) => {
            problems.push(format!("message_id must be 1 to {MAX_MESSAGE_ID_BYTES} bytes"));
            new_message_id()
        }
        None => new_message_id(),
    };
    let now = now_ms();
    let mut time = |key: &str| match item.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(raw)) if raw.is_empty() => None,
        Some(Value::String(raw)) => parse_ozeki_time(raw).or_else(|| {
            problems.push(format!("{key} {raw:?} is not a date (yyyy-MM-ddTHH:mm:ss)"));
            None
        }),
        Some(_) => {
            problems.push(format!("{key} must be a string"));
            None
        }
    };
    // The client's times are its local clock without a zone: they count from its
    // create_date, which is taken as now.
    let created = time("create_date");
    let valid_until = time("valid_until");
    let time_to_send = time("time_to_send");
    let shift = created.map_or(0, |c| now - c);
    let flag = |key: &str| item.get(key).and_then(Value::as_bool);
    let reports = ["submit_report_requested", "delivery_report_requested", "view_report_requested"]
        .iter()
        .any(|k| item.get(*k).is_some())
        .then(|| ReportRequests {
            submit: flag("submit_report_requested").unwrap_or(false),
            delivery: flag("delivery_report_requested").unwrap_or(false),
            view: flag("view_report_requested").unwrap_or(false),
        });
    let tags = parse_tags(item.get("tags"), &mut problems);
    let from_station = match text_of("from_station").filter(|s| !s.is_empty()) {
        Some(s) if s.len() > MAX_STATION_BYTES || s.chars().any(|c| c.is_control() || c.is_whitespace()) => {
            problems.push(format!("from_station must be at most {MAX_STATION_BYTES} bytes, no spaces"));
            None
        }
        other => other,
    };
    let text = text_of("text").unwrap_or_default();
    if let Err(e) = check_message_body(&text, state.config.limits.max_message_chars) {
        problems.push(format!("text: {e}"));
    }
    let to_address = text_of("to_address").unwrap_or_default();
    let mut draft = Mail {
        message_id,
        folder: Folder::Outbox,
        from_user: owner.to_owned(),
        from_station,
        to_address: to_address.clone(),
        to_user: None,
        to_station: None,
        text,
        created_ms: now,
        valid_until_ms: valid_until.map(|v| v + shift),
        time_to_send_ms: time_to_send.map(|t| t + shift),
        reports,
        tags,
        status: None,
        archive_id: None,
        marked: false,
    };
    let station_hint = text_of("to_station").filter(|s| !s.is_empty());
    match resolve(state, &to_address).await {
        Ok((user, station)) => {
            draft.to_user = Some(user);
            draft.to_station = station.or(station_hint);
        }
        Err(reason) => problems.push(reason),
    }
    let refusal = (!problems.is_empty()).then(|| problems.join("; "));
    (draft, refusal)
}

fn parse_tags(raw: Option<&Value>, problems: &mut Vec<String>) -> Vec<(String, String)> {
    let Some(raw) = raw.filter(|v| !v.is_null()) else { return Vec::new() };
    let Some(list) = raw.as_array() else {
        problems.push("tags must be a list of {\"name\", \"value\"}".to_owned());
        return Vec::new();
    };
    if list.len() > MAX_TAGS {
        problems.push(format!("at most {MAX_TAGS} tags"));
        return Vec::new();
    }
    let mut tags = Vec::with_capacity(list.len());
    for tag in list {
        match (tag.get("name").and_then(Value::as_str), tag.get("value").and_then(Value::as_str)) {
            (Some(name), Some(value)) => tags.push((name.to_owned(), value.to_owned())),
            _ => problems.push("each tag must be {\"name\": string, \"value\": string}".to_owned()),
        }
    }
    tags
}

/// A random UUID (version 4) for a message the client gave no id.
fn new_message_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let h = hex(&bytes);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// The account and station a recipient names, or why it names none.
async fn resolve(state: &AppState, raw: &str) -> Result<(String, Option<String>), String> {
    let parsed = recipient::parse(raw, state.domain())?;
    let username = match parsed.account {
        Account::Login(name) => name.as_str().to_owned(),
        Account::Email(email) => match state.accounts.find_by_email(&email).await {
            Ok(Some(user)) => user.username,
            Ok(None) => return Err(format!("unknown recipient {raw:?}: no user has the e-mail address {email:?}")),
            Err(e) => return Err(format!("could not look the recipient up: {e}")),
        },
    };
    Ok((username, parsed.station))
}

fn folder_param(raw: Option<&str>) -> Result<Folder, ApiError> {
    match raw.filter(|f| !f.trim().is_empty()) {
        None => Ok(Folder::Inbox),
        Some(raw) => Folder::parse(raw)
            .ok_or_else(|| ApiError::bad_request(format!("folder {raw:?} is not one of {}", Folder::NAMES))),
    }
}

fn limit_param(raw: Option<&str>, most: usize) -> Result<usize, ApiError> {
    match raw.filter(|l| !l.trim().is_empty()) {
        None => Ok(most),
        Some(raw) => match raw.trim().parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n.min(most)),
            _ => Err(ApiError::bad_request(format!("limit {raw:?} is not a positive whole number"))),
        },
    }
}

async fn rest_receive(state: &AppState, owner: &str, params: &Params) -> Result<Value, ApiError> {
    let folder = folder_param(params.get("folder"))?;
    let limit = limit_param(params.get("limit"), state.config.ozeki.max_download)?;
    let mail = state.mailbox.folder(owner, folder, limit).await?;
    let messages: Vec<Value> = mail.iter().map(|m| render::message_object(&state.hosts, m)).collect();
    let text = format!("{} messages in {}", messages.len(), folder.as_str());
    let data = json!({"folder": folder.as_str(), "limit": limit.to_string(), "data": messages});
    Ok(render::envelope(200, "SUCCESS", &text, data))
}

async fn rest_file(state: &AppState, owner: &str, body: &Value, action: MailAction) -> Result<Value, ApiError> {
    let folder = match body.get("folder") {
        None | Some(Value::Null) => Folder::Inbox,
        Some(Value::String(raw)) => folder_param(Some(raw))?,
        Some(_) => return Err(ApiError::bad_request("folder must be a string")),
    };
    let ids = body
        .get("message_ids")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::bad_request("the body must be {\"folder\": …, \"message_ids\": [ … ]}"))?;
    let ids: Vec<String> = ids
        .iter()
        .map(|id| match id {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            _ => Err(ApiError::bad_request("message_ids must be strings")),
        })
        .collect::<Result<_, _>>()?;
    let done = state.mailbox.file(owner, folder, ids.clone(), action).await?;
    let verb = if action == MailAction::Delete { "deleted" } else { "marked" };
    let text = format!("{} of {} messages {verb}", done.len(), ids.len());
    Ok(render::envelope(200, "SUCCESS", &text, json!({"folder": folder.as_str(), "message_ids": done})))
}

// ---------------------------------------------------------------------------------------
// The URL form.

async fn url_form(req: &HttpRequest, params: &Params, verb: &str, state: &AppState) -> HttpResponse {
    let format = match UrlFormat::parse(params.get("responseformat")) {
        Ok(f) => f,
        Err(message) => return url_answer(UrlFormat::Xml, verb, StatusCode::BAD_REQUEST, &message, &[]),
    };
    let outcome = async {
        let (username, password) = credentials(req, params)?;
        let owner = http_user(state, &username, &password).await?;
        if verb == "sendmessage" {
            url_send(state, &owner, params).await
        } else {
            url_receive(state, &owner, params).await
        }
    }
    .await;
    match outcome {
        Ok(records) => url_answer(format, verb, StatusCode::OK, "Command successfully executed", &records),
        Err(e) => url_answer(format, verb, e.status, &e.message, &[]),
    }
}

fn url_answer(
    format: UrlFormat,
    verb: &str,
    status: StatusCode,
    message: &str,
    records: &[render::Record],
) -> HttpResponse {
    let body = render::url_reply(format, verb, status.as_u16(), message, records);
    HttpResponse::build(status).content_type(format.content_type()).body(body)
}

async fn url_send(state: &AppState, owner: &str, params: &Params) -> Result<Vec<render::Record>, ApiError> {
    // With MessageCount, each message's fields carry its number (Recipient1, MessageData1…);
    // a field without its number applies to every message.
    let count = match params.get("messagecount").filter(|c| !c.trim().is_empty()) {
        None => None,
        Some(raw) => Some(
            raw.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| ApiError::bad_request(format!("MessageCount {raw:?} is not a positive number")))?,
        ),
    };
    let most = state.config.ozeki.max_messages_per_request;
    let field = |name: &str, index: Option<usize>| -> Option<String> {
        index.and_then(|i| params.get(&format!("{name}{i}"))).or_else(|| params.get(name)).map(str::to_owned)
    };
    let indices: Vec<Option<usize>> = match count {
        None => vec![None],
        Some(n) if n > most => {
            return Err(ApiError::too_large(format!("MessageCount {n}: at most {most} messages per request")))
        }
        Some(n) => (1..=n).map(Some).collect(),
    };
    let mut planned = Vec::new();
    for index in indices {
        let shown = |name: &str| index.map_or(name.to_owned(), |i| format!("{name}{i}"));
        let recipients = field("recipient", index)
            .filter(|r| !r.trim().is_empty())
            .ok_or_else(|| ApiError::bad_request(format!("{} is missing", shown("Recipient"))))?;
        let data = field("messagedata", index)
            .ok_or_else(|| ApiError::bad_request(format!("{} is missing", shown("MessageData"))))?;
        let message_type = field("messagetype", index).filter(|t| !t.is_empty()).unwrap_or("SMS:TEXT".to_owned());
        for to in recipients.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            planned.push((to.to_owned(), data.clone(), message_type.clone()));
        }
    }
    if planned.len() > most {
        return Err(ApiError::too_large(format!("{} recipients in one request; at most {most}", planned.len())));
    }
    let mut drafts = Vec::with_capacity(planned.len());
    let mut types = Vec::with_capacity(planned.len());
    for (to, text, message_type) in planned {
        let now = now_ms();
        let mut draft = Mail {
            message_id: new_message_id(),
            folder: Folder::Outbox,
            from_user: owner.to_owned(),
            from_station: None,
            to_address: to.clone(),
            to_user: None,
            to_station: None,
            text: text.clone(),
            created_ms: now,
            valid_until_ms: None,
            time_to_send_ms: None,
            reports: None,
            tags: Vec::new(),
            status: None,
            archive_id: None,
            marked: false,
        };
        let mut refusal = check_message_body(&text, state.config.limits.max_message_chars).err().map(|e| e.message);
        match resolve(state, &to).await {
            Ok((user, station)) => {
                draft.to_user = Some(user);
                draft.to_station = station;
            }
            Err(reason) => refusal = Some(reason),
        }
        drafts.push((draft, refusal));
        types.push(message_type);
    }
    let filed = state.mailbox.send_all(owner, drafts).await?;
    Ok(filed.iter().zip(&types).map(|(mail, message_type)| render::accept_report(mail, message_type)).collect())
}

async fn url_receive(state: &AppState, owner: &str, params: &Params) -> Result<Vec<render::Record>, ApiError> {
    let folder = folder_param(params.get("folder"))?;
    let limit = limit_param(params.get("limit"), state.config.ozeki.max_download)?;
    let after = match params.get("afterdownload").map(|a| a.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("leave") | Some("none") => None,
        Some("delete") => Some(MailAction::Delete),
        Some("mark") | Some("markasread") | Some("read") => Some(MailAction::Mark),
        Some(other) => {
            return Err(ApiError::bad_request(format!("AfterDownload {other:?} is not one of delete, mark, leave")))
        }
    };
    let mail = state.mailbox.folder(owner, folder, limit).await?;
    if let Some(action) = after {
        let ids = mail.iter().map(|m| m.message_id.clone()).collect();
        state.mailbox.file(owner, folder, ids, action).await?;
    }
    Ok(mail.iter().map(|m| render::received_message(&state.hosts, m)).collect())
}
