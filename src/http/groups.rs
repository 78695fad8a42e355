//! User groups over the admin API, in the REST API plugin's shapes: `/groups[/{name}]`
//! (`{"name","description","shared","admins","members"}`) and a user's groups,
//! `/users/{username}/groups[/{group}]` (`{"groupname":[…]}`). Every handler takes
//! [`Admin`].

use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};
use switchboard_actors::model::groups::{check_group_name, GroupRecord};

use super::entities::{plugin_list, NotAList};
use crate::auth::Admin;
use crate::error::ApiError;
use crate::inbound::parse_username;
use crate::requests::require_account;
use crate::state::AppState;

pub fn group_not_found(name: &str) -> ApiError {
    ApiError::not_found("GroupNotFoundException", format!("group '{name}' does not exist"))
}

/// The group, or 404 `GroupNotFoundException`.
pub async fn require_group(state: &AppState, name: &str) -> Result<GroupRecord, ApiError> {
    state.groups.find(name).await?.ok_or_else(|| group_not_found(name))
}

fn group_json(state: &AppState, group: &GroupRecord) -> Value {
    let jids = |names: &std::collections::BTreeSet<String>| {
        names.iter().map(|u| format!("{u}@{}", state.domain())).collect::<Vec<_>>()
    };
    json!({
        "name": group.name,
        "description": group.description,
        "shared": group.shared,
        "admins": jids(&group.admins),
        "members": jids(&group.members),
    })
}

/// A list field of an entity: absent and `null` are none; else user names or addresses
/// of existing accounts.
async fn people(state: &AppState, object: &mut Map<String, Value>, field: &str) -> Result<Vec<String>, ApiError> {
    let Some(value) = object.remove(field) else { return Ok(Vec::new()) };
    let listed = plugin_list(value)
        .map_err(|NotAList| ApiError::bad_request(format!("\"{field}\" must be a list of user names or addresses")))?;
    let mut names = Vec::new();
    for raw in listed.unwrap_or_default() {
        let username = parse_username(&raw, state.domain())?;
        require_account(state, &username).await?;
        names.push(username);
    }
    Ok(names)
}

/// A group as the admin posts it; `path_name` is the name in the URL of an update.
async fn group_from_body(state: &AppState, body: Value, path_name: Option<&str>) -> Result<GroupRecord, ApiError> {
    let Value::Object(mut object) = body else {
        return Err(ApiError::bad_request("a group must be a JSON object"));
    };
    let name = match (object.remove("name"), path_name) {
        (Some(Value::String(name)), Some(path)) if name != path => {
            return Err(ApiError::bad_request(format!("the body names group '{name}', the path '{path}'")))
        }
        (_, Some(path)) => path.to_owned(),
        (Some(Value::String(name)), None) => name,
        (_, None) => return Err(ApiError::bad_request("a group needs a \"name\"")),
    };
    check_group_name(&name).map_err(ApiError::bad_request)?;
    let mut group = GroupRecord::new(name);
    group.description = match object.remove("description") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(d)) => d,
        Some(_) => return Err(ApiError::bad_request("\"description\" must be a string")),
    };
    group.shared = match object.remove("shared") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(shared)) => shared,
        Some(Value::String(s)) if s == "true" || s == "false" => s == "true",
        Some(_) => return Err(ApiError::bad_request("\"shared\" must be true or false")),
    };
    group.members = people(state, &mut object, "members").await?.into_iter().collect();
    group.admins = people(state, &mut object, "admins").await?.into_iter().collect();
    // Someone named as both is an admin, as Openfire keeps one role per person.
    group.members.retain(|m| !group.admins.contains(m));
    Ok(group)
}

/// `GET /groups` → `{"groups":[…]}`.
pub async fn list(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let groups = state.groups.list().await?;
    let shown: Vec<Value> = groups.iter().map(|g| group_json(&state, g)).collect();
    Ok(HttpResponse::Ok().json(json!({ "groups": shown })))
}

/// `POST /groups` → 201; 409 `GroupAlreadyExistsException` if the name is taken.
pub async fn create(_: Admin, state: web::Data<AppState>, body: web::Json<Value>) -> Result<HttpResponse, ApiError> {
    let group = group_from_body(&state, body.into_inner(), None).await?;
    if state.groups.find(&group.name).await?.is_some() {
        return Err(ApiError::conflict(
            "GroupAlreadyExistsException",
            format!("group '{}' already exists", group.name),
        ));
    }
    let shown = group_json(&state, &group);
    state.groups.create(group).await?;
    Ok(HttpResponse::Created().json(shown))
}

/// `GET /groups/{name}`.
pub async fn get(_: Admin, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let group = require_group(&state, &path).await?;
    Ok(HttpResponse::Ok().json(group_json(&state, &group)))
}

/// `PUT /groups/{name}`: description, sharing and the people, replaced by what is given.
pub async fn update(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    require_group(&state, &path).await?;
    let group = group_from_body(&state, body.into_inner(), Some(&path)).await?;
    let shown = group_json(&state, &group);
    state.groups.update(group).await?;
    Ok(HttpResponse::Ok().json(shown))
}

/// `DELETE /groups/{name}`: the group, its memberships, room affiliations and workgroup
/// places go.
pub async fn delete(_: Admin, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    if !state.groups.delete(&path).await? {
        return Err(group_not_found(&path));
    }
    Ok(HttpResponse::Ok().json(json!({ "name": path.as_str() })))
}

/// `GET /users/{username}/groups` → `{"groupname":[…]}`.
pub async fn of_user(_: Admin, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    require_account(&state, &path).await?;
    Ok(HttpResponse::Ok().json(json!({ "groupname": state.groups.index().groups_of(&path) })))
}

/// The group names of a `{"groupname":[…]}` body (also a bare list or one name).
fn group_names(body: Value) -> Result<Vec<String>, ApiError> {
    let inner = match body {
        Value::Object(mut object) => object.remove("groupname").unwrap_or(Value::Null),
        other => other,
    };
    match plugin_list(inner) {
        Ok(Some(names)) if !names.is_empty() => Ok(names),
        _ => Err(ApiError::bad_request("expected {\"groupname\":[group…]} naming at least one group")),
    }
}

/// Adds (`Some(false)`, as a member) or removes (`None`) the user in every named group,
/// after checking that they all exist.
async fn set_in_groups(
    state: &AppState,
    username: &str,
    groups: &[String],
    admin: Option<bool>,
) -> Result<(), ApiError> {
    require_account(state, username).await?;
    for group in groups {
        require_group(state, group).await?;
    }
    for group in groups {
        let current = require_group(state, group).await?;
        // Adding keeps an admin an admin.
        let role = admin.map(|a| a || current.admins.contains(username));
        state.groups.set_membership(group, username, role).await?;
    }
    Ok(())
}

/// `POST /users/{username}/groups` `{"groupname":[…]}` → 201.
pub async fn add_to_groups(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    set_in_groups(&state, &path, &group_names(body.into_inner())?, Some(false)).await?;
    Ok(HttpResponse::Created().finish())
}

/// `DELETE /users/{username}/groups` `{"groupname":[…]}`.
pub async fn remove_from_groups(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    set_in_groups(&state, &path, &group_names(body.into_inner())?, None).await?;
    Ok(HttpResponse::Ok().finish())
}

/// `POST /users/{username}/groups/{group}` → 201.
pub async fn add_to_group(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (username, group) = path.into_inner();
    set_in_groups(&state, &username, &[group], Some(false)).await?;
    Ok(HttpResponse::Created().finish())
}

/// `DELETE /users/{username}/groups/{group}`.
pub async fn remove_from_group(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (username, group) = path.into_inner();
    set_in_groups(&state, &username, &[group], None).await?;
    Ok(HttpResponse::Ok().finish())
}
