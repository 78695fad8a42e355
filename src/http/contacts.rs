//! Contacts, presence and blocklists over HTTP: the stream owner's own
//! (`/restapi/v1/chat/{streamid}/contacts|presence|blocklist`) and the admin's view of any
//! user's roster (`/restapi/v1/users/{username}/roster`).
//!
//! Subscriptions follow RFC 6121 (see `switchboard_actors::roster`): a user adds a contact
//! and the subscription follows the handshake; only the admin writes a subscription
//! directly. A contact's `show`/`status` are what the user may see of it: its presence
//! when subscribed to it, `"offline"` when subscribed and it is unavailable, and `null`
//! when the user does not see it.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_actors::presence::Show;
use switchboard_actors::roster::{RosterItem, RosterOp, Subscription};
use switchboard_actors::router::{Blocklist, ChangeRoster, PresenceOf, SetBlock};
use switchboard_actors::user_session::ContactView;
use switchboard_actors::{Hosts, StoreError};

use crate::auth::Admin;
use crate::auth::CallerStation;
use crate::chatapi::{add_display_name, presence_json};
use crate::error::ApiError;
use crate::http::entities::roster_item_json;
use crate::inbound::{parse_presence, parse_recipient, parse_username};
use crate::requests::{self, require_account};
use crate::state::AppState;

/// Longest nickname, group name and presence status, in characters.
const MAX_LABEL_CHARS: usize = 1024;
/// Most groups on one contact.
const MAX_GROUPS: usize = 100;

/// A roster item as posted: `{"jid","nickname","groups","subscriptionType"}`. `groups` may
/// be a list or ofchat's `{"group":[…]}`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RosterItemBody {
    jid: Option<String>,
    nickname: Option<String>,
    #[serde(default)]
    groups: Option<Value>,
    subscription_type: Option<i64>,
}

/// A posted item, checked.
struct ItemFields {
    contact: Option<String>,
    nickname: Option<String>,
    groups: Vec<String>,
    subscription: Option<Subscription>,
}

impl RosterItemBody {
    fn check(self, domain: &str) -> Result<ItemFields, ApiError> {
        let contact = self.jid.as_deref().map(|raw| parse_recipient(raw, domain)).transpose()?;
        let nickname = self.nickname.filter(|n| !n.trim().is_empty());
        if nickname.as_ref().is_some_and(|n| n.chars().count() > MAX_LABEL_CHARS) {
            return Err(ApiError::bad_request(format!("nickname is longer than {MAX_LABEL_CHARS} characters")));
        }
        let listed = match self.groups {
            None | Some(Value::Null) => Value::Array(vec![]),
            Some(Value::Object(mut map)) => match map.remove("group") {
                Some(Value::String(one)) => Value::Array(vec![Value::String(one)]),
                Some(list) => list,
                None => Value::Array(vec![]),
            },
            Some(other) => other,
        };
        let groups: Vec<String> = serde_json::from_value(listed)
            .map_err(|_| ApiError::bad_request("groups must be a list of strings (or {\"group\":[…]})"))?;
        if groups.len() > MAX_GROUPS
            || groups.iter().any(|g| g.trim().is_empty() || g.chars().count() > MAX_LABEL_CHARS)
        {
            return Err(ApiError::bad_request(format!(
                "at most {MAX_GROUPS} groups, each 1 to {MAX_LABEL_CHARS} characters"
            )));
        }
        let subscription = self
            .subscription_type
            .map(|code| {
                Subscription::from_code(code).ok_or_else(|| {
                    ApiError::bad_request("subscriptionType must be 0 (none), 1 (to), 2 (from) or 3 (both)")
                })
            })
            .transpose()?;
        Ok(ItemFields { contact: contact.map(|jid| jid.user.to_string()), nickname, groups, subscription })
    }
}

/// Roster refusals with roster names (the store's generic ones speak of users).
fn roster_error(e: switchboard_actors::RouteError) -> ApiError {
    match e {
        switchboard_actors::RouteError::Store(StoreError::Conflict(m)) => {
            ApiError::conflict("RosterItemExistsException", m)
        }
        switchboard_actors::RouteError::Store(StoreError::NotFound(m)) => {
            ApiError::not_found("RosterItemNotFoundException", m)
        }
        other => other.into(),
    }
}

fn contact_json(view: &ContactView, hosts: &Hosts) -> Value {
    let mut value = roster_item_json(&view.item, hosts);
    let (show, status) = match (&view.presence, view.item.subscription.has_to()) {
        (Some(p), _) => (Some(p.show), p.status.clone()),
        (None, true) => (Some(Show::Offline), None),
        (None, false) => (None, None),
    };
    value["show"] = json!(show.map(Show::as_str));
    value["status"] = json!(status);
    value["availability"] = json!(show.map(Show::ozeki));
    add_display_name(&mut value, &view.item.contact, hosts);
    value
}

/// Applies a roster change; answers the owner's item as it now is (`None` once removed).
async fn change(
    state: &AppState,
    owner: String,
    contact: String,
    op: RosterOp,
) -> Result<Option<RosterItem>, ApiError> {
    let transition = state.router.send(ChangeRoster { owner, contact, op }).await?.map_err(roster_error)?;
    Ok(transition.owner_side.after)
}

/// The JSON answer for an item that was added or changed (and so is listed).
fn changed_item_json(item: Option<RosterItem>, hosts: &Hosts) -> Value {
    item.map_or(Value::Null, |item| roster_item_json(&item, hosts))
}

/// `GET /restapi/v1/chat/{streamid}/contacts` → `{"rosterItem":[…]}` with presence.
pub async fn list_contacts(
    CallerStation { stream: station, .. }: CallerStation,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let contacts = requests::contacts((&station).into()).await?;
    for contact in &contacts {
        state.users_info.want(&contact.item.contact);
    }
    let items: Vec<Value> = contacts.iter().map(|c| contact_json(c, &state.hosts)).collect();
    Ok(HttpResponse::Ok().json(json!({ "rosterItem": items })))
}

/// `POST /restapi/v1/chat/{streamid}/contacts` (a roster item) → 201: adds the contact and
/// asks to see its presence (approving its own request, if it made one).
pub async fn add_contact(
    CallerStation { stream: station, .. }: CallerStation,
    state: web::Data<AppState>,
    body: web::Json<RosterItemBody>,
) -> Result<HttpResponse, ApiError> {
    let fields = body.into_inner().check(state.domain())?;
    let contact = fields.contact.ok_or_else(|| ApiError::bad_request("a roster item needs a \"jid\""))?;
    let op = RosterOp::Add { nickname: fields.nickname, groups: fields.groups };
    let item = change(&state, station.username, contact, op).await?;
    Ok(HttpResponse::Created().json(changed_item_json(item, &state.hosts)))
}

/// `PUT /restapi/v1/chat/{streamid}/contacts/{jid}` (a roster item): nickname and groups.
pub async fn update_contact(
    CallerStation { stream: station, .. }: CallerStation,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Json<RosterItemBody>,
) -> Result<HttpResponse, ApiError> {
    let (_, jid) = path.into_inner();
    let contact = parse_username(&jid, state.domain())?;
    let fields = body.into_inner().check(state.domain())?;
    let op = RosterOp::Update { nickname: fields.nickname, groups: fields.groups };
    let item = change(&state, station.username, contact, op).await?;
    Ok(HttpResponse::Ok().json(changed_item_json(item, &state.hosts)))
}

/// `DELETE /restapi/v1/chat/{streamid}/contacts/{jid}`: removes the contact and cancels the
/// subscriptions both ways.
pub async fn remove_contact(
    CallerStation { stream: station, .. }: CallerStation,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (_, jid) = path.into_inner();
    let contact = parse_username(&jid, state.domain())?;
    change(&state, station.username, contact, RosterOp::Remove).await?;
    Ok(HttpResponse::Ok().finish())
}

#[derive(Deserialize)]
pub struct PresenceParams {
    show: Option<String>,
    status: Option<String>,
    priority: Option<i64>,
}

/// `POST /restapi/v1/chat/{streamid}/presence?show=&status=&priority=`: this station's
/// presence.
pub async fn set_presence(
    CallerStation { stream: station, .. }: CallerStation,
    params: web::Query<PresenceParams>,
) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    let presence = parse_presence(p.show.as_deref(), p.status, p.priority)?;
    requests::set_presence((&station).into(), presence).await?;
    Ok(HttpResponse::Ok().finish())
}

/// `GET /restapi/v1/chat/{streamid}/presence/{jid}`: the caller's own presence, or a
/// contact's it is subscribed to (403 otherwise).
pub async fn get_presence(
    CallerStation { stream: station, .. }: CallerStation,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (_, jid) = path.into_inner();
    let of = parse_username(&jid, state.domain())?;
    let availability = state.router.send(PresenceOf { username: station.username, of: of.clone() }).await??;
    let mut value = presence_json(&of, availability.as_ref(), &state.hosts);
    value["jid"] = json!(format!("{of}@{}", state.domain()));
    Ok(HttpResponse::Ok().json(value))
}

/// `GET /restapi/v1/chat/{streamid}/blocklist` → `{"blocked":[jid…]}`.
pub async fn get_blocklist(
    CallerStation { stream: station, .. }: CallerStation,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let blocked = state.router.send(Blocklist { username: station.username }).await?;
    let domain = state.domain();
    let jids: Vec<String> = blocked.iter().map(|u| format!("{u}@{domain}")).collect();
    Ok(HttpResponse::Ok().json(json!({ "blocked": jids })))
}

async fn set_block(
    CallerStation { stream: station, .. }: CallerStation,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    on: bool,
) -> Result<bool, ApiError> {
    let (_, jid) = path.into_inner();
    let blocked = parse_username(&jid, state.domain())?;
    Ok(state.router.send(SetBlock { blocker: station.username, blocked, on }).await??)
}

/// `POST /restapi/v1/chat/{streamid}/blocklist/{jid}` → 201 (200 if already blocked).
pub async fn block(
    station: CallerStation,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let added = set_block(station, state, path, true).await?;
    Ok(HttpResponse::build(if added { StatusCode::CREATED } else { StatusCode::OK }).finish())
}

/// `DELETE /restapi/v1/chat/{streamid}/blocklist/{jid}` → 200 (404 if not blocked).
pub async fn unblock(
    station: CallerStation,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    if !set_block(station, state, path, false).await? {
        return Err(ApiError::not_found("NotBlockedException", "that user is not blocked"));
    }
    Ok(HttpResponse::Ok().finish())
}

// ---- admin: any user's roster ----------------------------------------------------------

/// `GET /restapi/v1/users/{username}/roster` → `{"rosterItem":[…]}`, online or not.
pub async fn admin_roster(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let username = path.into_inner();
    require_account(&state, &username).await?;
    let rows = state.accounts.roster(username).await?;
    let items: Vec<Value> = rows.iter().filter(|r| r.listed).map(|r| roster_item_json(r, &state.hosts)).collect();
    Ok(HttpResponse::Ok().json(json!({ "rosterItem": items })))
}

/// `POST /restapi/v1/users/{username}/roster` (a roster item, `subscriptionType` default 0)
/// → 201; the subscription is mirrored on the contact's side.
pub async fn admin_add_item(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<RosterItemBody>,
) -> Result<HttpResponse, ApiError> {
    let fields = body.into_inner().check(state.domain())?;
    let contact = fields.contact.ok_or_else(|| ApiError::bad_request("a roster item needs a \"jid\""))?;
    let op = RosterOp::AdminSet {
        create: true,
        nickname: fields.nickname,
        groups: fields.groups,
        subscription: Some(fields.subscription.unwrap_or_default()),
    };
    let item = change(&state, path.into_inner(), contact, op).await?;
    Ok(HttpResponse::Created().json(changed_item_json(item, &state.hosts)))
}

/// `PUT /restapi/v1/users/{username}/roster/{jid}` (a roster item): nickname, groups and,
/// when given, the subscription.
pub async fn admin_update_item(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Json<RosterItemBody>,
) -> Result<HttpResponse, ApiError> {
    let (username, jid) = path.into_inner();
    let contact = parse_username(&jid, state.domain())?;
    let fields = body.into_inner().check(state.domain())?;
    let op = RosterOp::AdminSet {
        create: false,
        nickname: fields.nickname,
        groups: fields.groups,
        subscription: fields.subscription,
    };
    let item = change(&state, username, contact, op).await?;
    Ok(HttpResponse::Ok().json(changed_item_json(item, &state.hosts)))
}

/// `DELETE /restapi/v1/users/{username}/roster/{jid}`: as the user's own removal.
pub async fn admin_remove_item(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (username, jid) = path.into_inner();
    let contact = parse_username(&jid, state.domain())?;
    change(&state, username, contact, RosterOp::Remove).await?;
    Ok(HttpResponse::Ok().finish())
}
