//! MUC rooms over HTTP: the stream owner's joins, leaves, posts and invitations
//! (`/restapi/v1/chat/{streamid}/rooms/…`), the room directory any signed-in user may read
//! (`/restapi/v1/chat/rooms…`, members-only and hidden rooms only for their members), and
//! the admin API (`/restapi/v1/chatrooms…`, restAPI's modern shapes).

use actix::Addr;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::future::join_all;
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_actors::clock::format_stamp;

use super::entities::{plugin_list, room_json, NotAList};
use switchboard_actors::muc::conference::{AddService, AllRooms, CreateRoom};
use switchboard_actors::muc::room::{Administer, Describe, Destroy, Invite, MucRoom, OccupantView, Post, RoomView};
use switchboard_actors::muc::{
    check_room_name, Affiliation, AffiliationLists, MucServiceRecord, Role, RoomConfig, RoomError, RoomRecord,
};

use crate::auth::CallerStation;
use crate::auth::{Admin, Caller};
use crate::chatapi::{add_display_name, joined_json};
use crate::error::ApiError;
use crate::http::chat::parse_posted;
use crate::http::groups::group_not_found;
use crate::inbound::{check_nick, parse_username};
use crate::requests;
use crate::requests::{ask_room, deliver_invitations, find_room, require_account};
use crate::state::AppState;

/// Longest invitation reason, in characters.
const MAX_REASON_CHARS: usize = 1024;

async fn describe(room: &Addr<MucRoom>, name: &str) -> Result<RoomView, ApiError> {
    Ok(room.send(Describe).await.map_err(|_| RoomError::NotFound(name.to_owned()))??)
}

/// A room a signed-in user may see (404 otherwise, so hidden rooms stay hidden).
async fn visible_room(state: &AppState, caller: &Caller, name: &str) -> Result<RoomView, ApiError> {
    let room = find_room(state, name).await?;
    let view = describe(&room, name).await?;
    if !caller.is_admin() && !view.record.visible_to(&caller.username) {
        return Err(RoomError::NotFound(name.to_owned()).into());
    }
    Ok(view)
}

fn occupant_json(state: &AppState, room: &str, o: &OccupantView) -> Value {
    let mut shown = json!({
        "jid": format!("{}/{}", state.muc.room_jid(room), o.nick),
        "nick": o.nick,
        "userAddress": format!("{}@{}", o.username, state.domain()),
        "role": o.role.as_str(),
        "affiliation": o.affiliation.map_or("none", Affiliation::as_str),
    });
    add_display_name(&mut shown, &o.username, &state.hosts);
    shown
}

fn occupants_json(state: &AppState, view: &RoomView, voiced_only: bool) -> Vec<Value> {
    view.occupants
        .iter()
        .filter(|o| !voiced_only || o.role != Role::Visitor)
        .map(|o| occupant_json(state, &view.record.name, o))
        .collect()
}

async fn history_json(state: &AppState, record: &RoomRecord) -> Result<Value, ApiError> {
    let limit = state.config.history.max_limit;
    let messages = state.archive.room_messages(record.name.clone(), record.created_ms, limit).await?;
    let room_jid = state.muc.room_jid(&record.name);
    let list: Vec<Value> = messages
        .iter()
        .map(|m| {
            let from = format!("{room_jid}/{}", m.nick);
            json!({
                "id": m.id.to_string(),
                "type": "groupchat",
                "from": from,
                "to": room_jid,
                "body": m.body,
                "data": m.data,
                "stamp": format_stamp(m.stamp_ms),
                "delay_stamp": format_stamp(m.stamp_ms),
                "delay_from": from,
            })
        })
        .collect();
    Ok(json!({ "messages": list }))
}

// ---- the stream owner's room actions -----------------------------------------------------

#[derive(Deserialize)]
pub struct JoinParams {
    nick: Option<String>,
    password: Option<String>,
}

/// `PUT /restapi/v1/chat/{streamid}/rooms/{room}?nick=&password=`: enter (creating the room,
/// as its owner, if it does not exist and users may create rooms) → 201 when created, else
/// 200, with `{"room","nick","role","affiliation","created"}`.
pub async fn join(
    CallerStation { stream: station, .. }: CallerStation,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    params: web::Query<JoinParams>,
) -> Result<HttpResponse, ApiError> {
    let (_, room) = path.into_inner();
    let room = state.muc.parse_room(&room)?;
    let params = params.into_inner();
    let nick = check_nick(params.nick, &station.username)?;
    let joined = requests::enter_room((&station).into(), room, nick, params.password).await?;
    let body = joined_json(&joined);
    Ok(if joined.created { HttpResponse::Created().json(body) } else { HttpResponse::Ok().json(body) })
}

/// `DELETE /restapi/v1/chat/{streamid}/rooms/{room}`: leave.
pub async fn leave(
    CallerStation { stream: station, .. }: CallerStation,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (_, room) = path.into_inner();
    let room = state.muc.parse_room(&room)?;
    requests::exit_room((&station).into(), room).await?;
    Ok(HttpResponse::Ok().finish())
}

/// `POST /restapi/v1/chat/{streamid}/rooms/{room}` (text or JSON `{"body",…}`) → 200
/// `{"id","stamp"}` once archived; 403 if not an occupant, or a visitor of a moderated room.
pub async fn post(
    req: HttpRequest,
    CallerStation { stream: station, .. }: CallerStation,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    raw: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (_, name) = path.into_inner();
    let room = find_room(&state, &name).await?;
    let posted = parse_posted(&req, &raw, state.config.limits.max_message_chars)?;
    let post = Post { username: station.username, resource: station.resource, body: posted.body, data: posted.data };
    let stored = ask_room(&room, &name, post).await?;
    Ok(HttpResponse::Ok().json(json!({ "id": stored.id.to_string(), "stamp": format_stamp(stored.stamp_ms) })))
}

/// Checks an invitation reason (text body).
fn reason_text(raw: &[u8]) -> Result<String, ApiError> {
    let reason = std::str::from_utf8(raw).map_err(|_| ApiError::bad_request("the reason is not valid UTF-8"))?;
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::bad_request(format!("the reason is longer than {MAX_REASON_CHARS} characters")));
    }
    Ok(reason.trim().to_owned())
}

/// `POST /restapi/v1/chat/{streamid}/rooms/{room}/{jid}` (body: the reason): a mediated
/// invitation; the invitee's stations get `chatapi.muc {"type":"invitationReceived",…}`.
pub async fn invite(
    CallerStation { stream: station, .. }: CallerStation,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
    raw: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (_, name, jid) = path.into_inner();
    let room = find_room(&state, &name).await?;
    let invitee = parse_username(&jid, state.domain())?;
    let invite = Invite {
        inviter: Some((station.username, station.resource)),
        invitees: vec![invitee],
        reason: reason_text(&raw)?,
    };
    deliver_invitations(&state, &room, &name, invite).await?;
    Ok(HttpResponse::Ok().finish())
}

// ---- the directory ----------------------------------------------------------------------

#[derive(Deserialize)]
pub struct ListParams {
    #[serde(rename = "type")]
    kind: Option<String>,
    search: Option<String>,
}

/// The rooms `caller` may see, filtered by `type` (public | all) and `search`.
async fn list_rooms(
    state: &AppState,
    caller: &Caller,
    params: ListParams,
    service: &Service,
) -> Result<Vec<Value>, ApiError> {
    let public_only = match params.kind.as_deref() {
        None | Some("all") => false,
        Some("public") => true,
        Some(other) => return Err(ApiError::bad_request(format!("type {other:?}: expected public or all"))),
    };
    let search = params.search.map(|s| s.to_lowercase());
    let rooms = state.conference.send(AllRooms).await?;
    let views = join_all(rooms.iter().map(|room| room.send(Describe))).await;
    let admin = caller.is_admin();
    let mut listed: Vec<Value> = views
        .into_iter()
        .flatten()
        .flatten()
        .filter(|v| service.holds(state, &v.record.name))
        .filter(|v| admin || v.record.visible_to(&caller.username))
        .filter(|v| !public_only || v.record.config.public_room)
        .filter(|v| {
            search.as_ref().is_none_or(|s| {
                let c = &v.record.config;
                [&v.record.name, &c.natural_name, &c.description].iter().any(|f| f.to_lowercase().contains(s))
            })
        })
        .map(|v| room_json(&v.record, &state.hosts, v.occupants.len(), admin))
        .collect();
    listed.sort_by(|a, b| a["roomName"].as_str().cmp(&b["roomName"].as_str()));
    Ok(listed)
}

/// `GET /restapi/v1/chat/rooms?type=public|all&search=` → `{"chatRooms":[…]}`.
pub async fn directory(
    caller: Caller,
    state: web::Data<AppState>,
    params: web::Query<ListParams>,
    service: Service,
) -> Result<HttpResponse, ApiError> {
    check_service(&state, &ServiceQuery { servicename: service.0.clone() })?;
    let rooms = list_rooms(&state, &caller, params.into_inner(), &service).await?;
    Ok(HttpResponse::Ok().json(json!({ "chatRooms": rooms })))
}

/// What a room sub-resource shows.
#[derive(Clone, Copy)]
pub enum RoomPart {
    Entity,
    Occupants,
    Participants,
    History,
}

async fn show_part(state: &AppState, view: RoomView, part: RoomPart, admin: bool) -> Result<HttpResponse, ApiError> {
    let body = match part {
        RoomPart::Entity => room_json(&view.record, &state.hosts, view.occupants.len(), admin),
        RoomPart::Occupants => json!({ "occupants": occupants_json(state, &view, false) }),
        RoomPart::Participants => json!({ "participants": occupants_json(state, &view, true) }),
        RoomPart::History => history_json(state, &view.record).await?,
    };
    Ok(HttpResponse::Ok().json(body))
}

/// `GET /restapi/v1/chat/rooms/{room}[/occupants|/participants|/chathistory]`.
pub async fn room_part(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    part: RoomPart,
) -> Result<HttpResponse, ApiError> {
    let view = visible_room(&state, &caller, &path.into_inner()).await?;
    show_part(&state, view, part, false).await
}

// ---- admin ------------------------------------------------------------------------------

/// A room as the admin posts it: the restAPI entity (config keys, `roomName`, and the
/// affiliation lists as JIDs or user names). `persistent` defaults to true here.
/// A room entity's affiliation lists, of users (`owners`…) and of groups (`ownerGroups`…).
struct EntityLists {
    users: AffiliationLists,
    groups: AffiliationLists,
}

fn room_from_body(
    state: &AppState,
    mut body: Value,
    name: Option<&str>,
    service: &Service,
) -> Result<(RoomRecord, EntityLists), ApiError> {
    let object = body.as_object_mut().ok_or_else(|| ApiError::bad_request("a room must be a JSON object"))?;
    let room_name = match (object.remove("roomName"), name) {
        (_, Some(path_name)) => path_name.to_owned(),
        (Some(Value::String(n)), None) => n,
        (_, None) => return Err(ApiError::bad_request("a room needs a \"roomName\"")),
    };
    check_room_name(&room_name)?;
    let mut lists = EntityLists { users: Vec::new(), groups: Vec::new() };
    for affiliation in Affiliation::ALL {
        let plural = affiliation.plural();
        // `null` is absent; the REST API plugin has also written `{"owner": [...]}`.
        if let Some(value) = object.remove(plural) {
            let jids = plugin_list(value)
                .map_err(|NotAList| ApiError::bad_request(format!("\"{plural}\" must be a list of user addresses")))?;
            if let Some(jids) = jids {
                let users =
                    jids.iter().map(|jid| parse_username(jid, state.domain())).collect::<Result<Vec<_>, _>>()?;
                lists.users.push((affiliation, users));
            }
        }
        let field = format!("{}Groups", plural.trim_end_matches('s'));
        if let Some(value) = object.remove(&field) {
            let groups = plugin_list(value)
                .map_err(|NotAList| ApiError::bad_request(format!("\"{field}\" must be a list of groups")))?;
            if let Some(groups) = groups {
                let groups: Vec<String> = groups.iter().map(|g| group_name(g)).collect();
                if let Some(missing) = groups.iter().find(|g| !state.groups.index().exists(g)) {
                    return Err(group_not_found(missing));
                }
                lists.groups.push((affiliation, groups));
            }
        }
    }
    if let Some(roles) = object.remove("broadcastPresenceRoles") {
        let roles = plugin_list(roles)
            .map_err(|NotAList| ApiError::bad_request("\"broadcastPresenceRoles\" must be a list of roles"))?;
        if let Some(roles) = roles {
            if let Some(bad) = roles.iter().find(|r| !matches!(r.as_str(), "moderator" | "participant" | "visitor")) {
                return Err(ApiError::bad_request(format!(
                    "broadcastPresenceRoles: unknown role {bad:?}; expected moderator, participant or visitor"
                )));
            }
            object.insert("broadcastPresenceRoles".into(), json!(roles));
        }
    }
    if let Some(Value::String(allow)) = object.get("allowPM") {
        if !matches!(allow.as_str(), "anyone" | "participants" | "moderators" | "none") {
            return Err(ApiError::bad_request(format!(
                "allowPM {allow:?}: expected anyone, participants, moderators or none"
            )));
        }
    }
    // A `null` field is an absent one: its default.
    object.retain(|_, value| !value.is_null());
    object.entry("persistent").or_insert(Value::Bool(true));
    for ignored in ["jid", "creationDate", "modificationDate", "passwordProtected", "occupantCount"] {
        object.remove(ignored);
    }
    let config: RoomConfig =
        serde_json::from_value(body).map_err(|e| ApiError::bad_request(format!("invalid room: {e}")))?;
    if config.password.as_deref() == Some("") {
        return Err(ApiError::bad_request("password must not be empty (use null for none)"));
    }
    let mut record = RoomRecord::new(service.key(state, &room_name)?, config);
    for (affiliation, users) in &lists.users {
        for user in users {
            record.affiliations.insert(user.clone(), *affiliation);
        }
    }
    for (affiliation, groups) in &lists.groups {
        for group in groups {
            record.group_affiliations.insert(group.clone(), *affiliation);
        }
    }
    Ok((record, lists))
}

/// A group as a room entity or path names it (surrounding spaces aside).
fn group_name(raw: &str) -> String {
    raw.trim().to_owned()
}

/// The MUC service a request names with `servicename` (this server runs one).
#[derive(Deserialize)]
pub struct ServiceQuery {
    servicename: Option<String>,
}

pub fn check_service(state: &AppState, query: &ServiceQuery) -> Result<(), ApiError> {
    match query.servicename.as_deref() {
        None | Some("") => Ok(()),
        Some(name) if state.muc.has_service(name) => Ok(()),
        Some(other) => {
            Err(ApiError::not_found("MUCServiceNotFoundException", format!("there is no chat service '{other}'")))
        }
    }
}

/// The MUC service an admin request names with `?servicename=` (default: `muc.service`).
pub struct Service(Option<String>);

impl actix_web::FromRequest for Service {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Service, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let query = web::Query::<ServiceQuery>::from_query(req.query_string()).map(web::Query::into_inner);
        let service = query.ok().and_then(|q| q.servicename).filter(|s| !s.is_empty());
        std::future::ready(Ok(Service(service)))
    }
}

impl Service {
    /// The key of room `name` on this service.
    fn key(&self, state: &AppState, name: &str) -> Result<String, ApiError> {
        Ok(state.muc.room_key(name, self.0.as_deref())?)
    }

    /// Whether the room with `key` is on this service.
    fn holds(&self, state: &AppState, key: &str) -> bool {
        state.muc.split_key(key).1 == self.0.as_deref().unwrap_or(&state.muc.service)
    }
}

/// `GET /restapi/v1/chatrooms?type=&search=` → every room.
pub async fn admin_list(
    admin: Admin,
    state: web::Data<AppState>,
    params: web::Query<ListParams>,
    service: Service,
) -> Result<HttpResponse, ApiError> {
    let rooms = list_rooms(&state, &admin.0, params.into_inner(), &service).await?;
    Ok(HttpResponse::Ok().json(json!({ "chatRooms": rooms })))
}

/// `POST /restapi/v1/chatrooms` → 201; 409 if the name is taken, 400 if it is not lowercase.
pub async fn admin_create(
    _: Admin,
    state: web::Data<AppState>,
    service: Service,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (record, _) = room_from_body(&state, body.into_inner(), None, &service)?;
    let name = record.name.clone();
    state.conference.send(CreateRoom { record, watcher: None, empty_timeout: None }).await??;
    let room = find_room(&state, &name).await?;
    let view = describe(&room, &name).await?;
    Ok(HttpResponse::Created().json(room_json(&view.record, &state.hosts, view.occupants.len(), true)))
}

/// `GET /restapi/v1/chatrooms/{room}[/occupants|/participants|/chathistory]`.
pub async fn admin_part(
    _: Admin,
    state: web::Data<AppState>,
    service: Service,
    path: web::Path<String>,
    part: RoomPart,
) -> Result<HttpResponse, ApiError> {
    let name = service.key(&state, &path.into_inner())?;
    let room = find_room(&state, &name).await?;
    let view = describe(&room, &name).await?;
    show_part(&state, view, part, true).await
}

/// `PUT /restapi/v1/chatrooms/{room}`: replaces the config and every affiliation list given.
pub async fn admin_update(
    _: Admin,
    state: web::Data<AppState>,
    service: Service,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let plain = path.into_inner();
    let name = service.key(&state, &plain)?;
    let room = find_room(&state, &name).await?;
    let (record, lists) = room_from_body(&state, body.into_inner(), Some(&plain), &service)?;
    let configure = Administer::Configure { config: record.config, users: lists.users, groups: lists.groups };
    let view = ask_room(&room, &name, configure).await?;
    Ok(HttpResponse::Ok().json(room_json(&view.record, &state.hosts, view.occupants.len(), true)))
}

/// `DELETE /restapi/v1/chatrooms/{room}`: ends the room; occupants are told why.
pub async fn admin_delete(
    _: Admin,
    state: web::Data<AppState>,
    service: Service,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = service.key(&state, &path.into_inner())?;
    let room = find_room(&state, &name).await?;
    let reason = "the room was destroyed by the administrator".to_owned();
    ask_room(&room, &name, Destroy { reason }).await?;
    Ok(HttpResponse::Ok().finish())
}

fn affiliation_list(raw: &str) -> Result<Affiliation, ApiError> {
    Affiliation::from_plural(raw).ok_or_else(|| {
        ApiError::not_found(
            "NotFoundException",
            format!("no room resource {raw:?}; expected owners, admins, members or outcasts"),
        )
    })
}

/// `GET /restapi/v1/chatrooms/{room}/{owners|admins|members|outcasts}` → `{"owners":[jid…]}`.
pub async fn admin_affiliations(
    _: Admin,
    state: web::Data<AppState>,
    service: Service,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (name, list) = path.into_inner();
    let name = service.key(&state, &name)?;
    let affiliation = affiliation_list(&list)?;
    let room = find_room(&state, &name).await?;
    let view = describe(&room, &name).await?;
    let jids: Vec<String> =
        view.record.with_affiliation(affiliation).iter().map(|u| format!("{u}@{}", state.domain())).collect();
    Ok(HttpResponse::Ok().json(json!({ affiliation.plural(): jids })))
}

/// `PUT /restapi/v1/chatrooms/{room}/{list}` (`{"owners":[…]}` or a bare list): replaces it.
pub async fn admin_replace_affiliations(
    _: Admin,
    state: web::Data<AppState>,
    service: Service,
    path: web::Path<(String, String)>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (name, list) = path.into_inner();
    let name = service.key(&state, &name)?;
    let affiliation = affiliation_list(&list)?;
    let room = find_room(&state, &name).await?;
    let body = body.into_inner();
    let jids = match body.get(affiliation.plural()) {
        Some(inner) => inner.clone(),
        None => body,
    };
    let jids: Vec<String> = serde_json::from_value(jids)
        .map_err(|_| ApiError::bad_request(format!("expected {{\"{}\":[jid…]}}", affiliation.plural())))?;
    let mut usernames = Vec::with_capacity(jids.len());
    for jid in &jids {
        let username = parse_username(jid, state.domain())?;
        require_account(&state, &username).await?;
        usernames.push(username);
    }
    let change = Administer::ReplaceAll { affiliation, usernames };
    ask_room(&room, &name, change).await?;
    Ok(HttpResponse::Ok().finish())
}

/// Who an affiliation change by path is for: a user (by address) or a group.
#[derive(Clone, Copy)]
pub enum Holder {
    User,
    Group,
}

/// Gives (`add`) or takes away the affiliation `list` of room `name` for the holder named
/// `who`: 201 when given, 200 when taken away (404 if it was not held).
async fn change_affiliation(
    state: &AppState,
    service: &Service,
    (name, list, who): (String, String, String),
    holder: Holder,
    add: bool,
) -> Result<HttpResponse, ApiError> {
    let name = service.key(state, &name)?;
    let affiliation = affiliation_list(&list)?;
    let room = find_room(state, &name).await?;
    let (given, expected) = if add { (Some(affiliation), None) } else { (None, Some(affiliation)) };
    let change = match holder {
        Holder::User => {
            let username = parse_username(&who, state.domain())?;
            if add {
                require_account(state, &username).await?;
            }
            Administer::Affiliate { username, affiliation: given, expected }
        }
        Holder::Group => {
            let group = group_name(&who);
            if add && !state.groups.index().exists(&group) {
                return Err(group_not_found(&group));
            }
            Administer::AffiliateGroup { group, affiliation: given, expected }
        }
    };
    ask_room(&room, &name, change).await?;
    Ok(if add { HttpResponse::Created().finish() } else { HttpResponse::Ok().finish() })
}

/// `POST` (→ 201, `add`) or `DELETE` (404 if not held) of
/// `/restapi/v1/chatrooms/{room}/{owners|admins|members|outcasts}/{jid}` for a user, or
/// `…/{list}/group/{group}` for a group, whose people then hold the affiliation.
pub async fn admin_affiliation(
    _: Admin,
    state: web::Data<AppState>,
    service: Service,
    path: web::Path<(String, String, String)>,
    holder: Holder,
    add: bool,
) -> Result<HttpResponse, ApiError> {
    change_affiliation(&state, &service, path.into_inner(), holder, add).await
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AdminInvite {
    /// `null` or absent: no reason.
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    jids_to_invite: Option<Vec<String>>,
}

/// `POST /restapi/v1/chatrooms/{room}/invite` `{"reason","jidsToInvite":[…]}`.
pub async fn admin_invite(
    _: Admin,
    state: web::Data<AppState>,
    service: Service,
    path: web::Path<String>,
    body: web::Json<AdminInvite>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let name = service.key(&state, &path)?;
    invite_as_admin(&state, &name, body.jids_to_invite.unwrap_or_default(), body.reason).await
}

/// `POST /restapi/v1/chatrooms/{room}/invite/{jid}` (the REST API plugin's) with an optional
/// `{"reason"}`: one invitee.
pub async fn admin_invite_one(
    _: Admin,
    state: web::Data<AppState>,
    service: Service,
    path: web::Path<(String, String)>,
    body: Option<web::Json<AdminInvite>>,
) -> Result<HttpResponse, ApiError> {
    let (room, jid) = path.into_inner();
    let reason = body.and_then(|b| b.into_inner().reason);
    invite_as_admin(&state, &service.key(&state, &room)?, vec![jid], reason).await
}

async fn invite_as_admin(
    state: &AppState,
    name: &str,
    jids: Vec<String>,
    reason: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let room = find_room(state, name).await?;
    if jids.is_empty() {
        return Err(ApiError::bad_request("jidsToInvite must name at least one user"));
    }
    let invitees = jids.iter().map(|jid| parse_username(jid, state.domain())).collect::<Result<Vec<_>, _>>()?;
    let reason = reason_text(reason.unwrap_or_default().as_bytes())?;
    let count = deliver_invitations(state, &room, name, Invite { inviter: None, invitees, reason }).await?;
    Ok(HttpResponse::Ok().json(json!({ "invited": count })))
}

/// Every `/chatrooms…` request: a `servicename` other than this server's MUC service is
/// refused with 404 `MUCServiceNotFoundException` before any handler runs.
pub async fn require_service(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let query = web::Query::<ServiceQuery>::from_query(req.query_string()).ok();
    let refusal = match (req.app_data::<web::Data<AppState>>(), query) {
        (Some(state), Some(query)) => check_service(state, &query).err(),
        _ => None,
    };
    match refusal {
        Some(refused) => Ok(req.error_response(refused)),
        None => Ok(next.call(req).await?.map_into_boxed_body()),
    }
}

/// The rooms of a bulk body: `{"chatRooms":[…]}` or a bare list.
fn bulk_rooms(body: Value) -> Result<Vec<Value>, ApiError> {
    let list = match body {
        Value::Object(mut object) => object.remove("chatRooms").unwrap_or(Value::Null),
        other => other,
    };
    match list {
        Value::Array(rooms) if !rooms.is_empty() => Ok(rooms),
        Value::Object(one) => Ok(vec![Value::Object(one)]),
        _ => Err(ApiError::bad_request("expected {\"chatRooms\":[room…]} with at least one room")),
    }
}

/// What one room of a bulk request came to, in the plugin's `RoomCreationResultEntity`.
fn bulk_result(name: &str, outcome: Result<(), ApiError>) -> (bool, Value) {
    match outcome {
        Ok(()) => {
            (true, json!({ "roomName": name, "resultType": "Success", "message": "Room was successfully created" }))
        }
        Err(e) => (false, json!({ "roomName": name, "resultType": "Failure", "message": e.message })),
    }
}

fn bulk_answer(results: Vec<(bool, Value)>) -> HttpResponse {
    let (success, failure): (Vec<_>, Vec<_>) = results.into_iter().partition(|(ok, _)| *ok);
    let values = |list: Vec<(bool, Value)>| list.into_iter().map(|(_, v)| v).collect::<Vec<_>>();
    HttpResponse::Ok().json(json!({ "success": values(success), "failure": values(failure), "other": [] }))
}

fn bulk_name(room: &Value) -> String {
    room.get("roomName").and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// `POST /chatrooms/bulk` `{"chatRooms":[…]}` → 200 `{"success":[…],"failure":[…]}`: each
/// room is created or refused on its own.
pub async fn admin_bulk_create(
    _: Admin,
    state: web::Data<AppState>,
    service: Service,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let mut results = Vec::new();
    for room in bulk_rooms(body.into_inner())? {
        let name = bulk_name(&room);
        let outcome = async {
            let (record, _) = room_from_body(&state, room, None, &service)?;
            state.conference.send(CreateRoom { record, watcher: None, empty_timeout: None }).await??;
            Ok(())
        };
        results.push(bulk_result(&name, outcome.await));
    }
    Ok(bulk_answer(results))
}

/// `PUT /chatrooms/bulk`: each room named is reconfigured as `PUT /chatrooms/{room}` does.
pub async fn admin_bulk_update(
    _: Admin,
    state: web::Data<AppState>,
    service: Service,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let mut results = Vec::new();
    for room in bulk_rooms(body.into_inner())? {
        let name = bulk_name(&room);
        let outcome = async {
            let key = service.key(&state, &name)?;
            let addr = find_room(&state, &key).await?;
            let (record, lists) = room_from_body(&state, room, Some(&name), &service)?;
            let configure = Administer::Configure { config: record.config, users: lists.users, groups: lists.groups };
            ask_room(&addr, &name, configure).await?;
            Ok(())
        };
        results.push(bulk_result(&name, outcome.await));
    }
    Ok(bulk_answer(results))
}

/// `DELETE /chatrooms/bulk` (`{"chatRooms":[{"roomName"}…]}` or a list of names): each
/// room is destroyed or reported missing.
pub async fn admin_bulk_delete(
    _: Admin,
    state: web::Data<AppState>,
    service: Service,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let mut results = Vec::new();
    for room in bulk_rooms(body.into_inner())? {
        let name = match &room {
            Value::String(name) => name.clone(),
            other => bulk_name(other),
        };
        let outcome = async {
            let key = service.key(&state, &name)?;
            let addr = find_room(&state, &key).await?;
            let reason = "the room was destroyed by the administrator".to_owned();
            ask_room(&addr, &key, Destroy { reason }).await?;
            Ok(())
        };
        results.push(bulk_result(&name, outcome.await));
    }
    Ok(bulk_answer(results))
}

/// `GET /chatservices` → `{"chatServices":[{"serviceName","description","hidden"}]}`: the
/// default service (`muc.service`) and those added.
pub async fn chat_services(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let default = json!({"serviceName": state.muc.service, "description": "Chat rooms", "hidden": false});
    let added = state
        .muc
        .extra_services
        .all()
        .into_iter()
        .map(|s| json!({"serviceName": s.name, "description": s.description, "hidden": s.hidden}));
    let all: Vec<Value> = std::iter::once(default).chain(added).collect();
    Ok(HttpResponse::Ok().json(json!({ "chatServices": all })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewService {
    service_name: Option<String>,
    description: Option<String>,
    hidden: Option<bool>,
}

/// `POST /chatservices` `{"serviceName","description","hidden"}` → 201: a MUC service whose
/// rooms are `room@{serviceName}.{domain}` (`?servicename=` names it on `/chatrooms`); 409
/// if it exists; 400 for a name that is not a lowercase DNS label.
pub async fn create_chat_service(
    _: Admin,
    state: web::Data<AppState>,
    body: web::Json<NewService>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let name = body.service_name.ok_or_else(|| ApiError::bad_request("a chat service needs a \"serviceName\""))?;
    let label_ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !label_ok || name == "workgroup" {
        return Err(ApiError::bad_request(format!(
            "serviceName {name:?} must be a lowercase DNS label (a-z, 0-9, '-'), other than 'workgroup'"
        )));
    }
    let service = MucServiceRecord {
        name: name.clone(),
        description: body.description.unwrap_or_default(),
        hidden: body.hidden.unwrap_or(false),
    };
    state.conference.send(AddService { service }).await?.map_err(|e| match e {
        RoomError::Store(switchboard_actors::StoreError::Conflict(m)) => {
            ApiError::conflict("AlreadyExistsException", m)
        }
        other => other.into(),
    })?;
    Ok(HttpResponse::Created().json(json!({ "serviceName": name })))
}
