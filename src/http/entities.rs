//! The REST API's entities: how rooms, workgroups and roster items are shown to API clients
//! (ofchat's and the restAPI plugin's key names). The core's records know none of this.

use serde_json::{json, Value};
use switchboard_actors::clock::format_stamp;
use switchboard_actors::model::records::{Affiliation, RoomRecord, RosterItem, WorkgroupRecord};
use switchboard_actors::{Address, Hosts};

/// A room as the APIs show it. The admin sees the password and the outcasts; users see only
/// whether there is a password.
pub fn room_json(room: &RoomRecord, hosts: &Hosts, occupants: usize, for_admin: bool) -> Value {
    let jids =
        |a| room.with_affiliation(a).iter().map(|u| hosts.render(&Address::user(u.as_str()))).collect::<Vec<_>>();
    let config = &room.config;
    let mut value = json!({
        // A room on another MUC service has the key `name@service`; its name is the first part.
        "roomName": room.name.split('@').next().unwrap_or_default(),
        "jid": hosts.render(&Address::room(room.name.as_str())),
        "naturalName": config.natural_name,
        "description": config.description,
        "subject": config.subject,
        "creationDate": format_stamp(room.created_ms),
        "modificationDate": format_stamp(room.modified_ms),
        "maxUsers": config.max_users,
        "persistent": config.persistent,
        "publicRoom": config.public_room,
        "membersOnly": config.members_only,
        "moderated": config.moderated,
        "canOccupantsInvite": config.can_occupants_invite,
        "canAnyoneDiscoverJID": config.can_anyone_discover_jid,
        "registrationEnabled": config.registration_enabled,
        "canOccupantsChangeSubject": config.can_occupants_change_subject,
        "canChangeNickname": config.can_change_nickname,
        "loginRestrictedToNickname": config.login_restricted_to_nickname,
        "logEnabled": config.log_enabled,
        "broadcastPresenceRoles": config.broadcast_presence_roles,
        "allowPM": config.allow_pm,
        "passwordProtected": config.password.is_some(),
        "occupantCount": occupants,
        "owners": jids(Affiliation::Owner),
        "ownerGroups": room.groups_with(Affiliation::Owner),
        "admins": jids(Affiliation::Admin),
        "adminGroups": room.groups_with(Affiliation::Admin),
        "members": jids(Affiliation::Member),
        "memberGroups": room.groups_with(Affiliation::Member),
    });
    if for_admin {
        value["password"] = json!(config.password);
        value["outcasts"] = json!(jids(Affiliation::Outcast));
        value["outcastGroups"] = json!(room.groups_with(Affiliation::Outcast));
    }
    value
}

/// A value that should have been a list of strings.
#[derive(Debug)]
pub struct NotAList;

/// A list of addresses in the shapes the REST API plugin has written: `["a@x"]`, or a
/// wrapper object with one key (`{"owner": ["a@x"]}`, also holding a single string); `null`
/// is none.
pub fn plugin_list(value: Value) -> Result<Option<Vec<String>>, NotAList> {
    let inner = match value {
        Value::Null => return Ok(None),
        Value::Object(map) if map.len() == 1 => map.into_iter().next().map(|(_, v)| v).unwrap_or(Value::Null),
        other => other,
    };
    match inner {
        Value::Null => Ok(Some(Vec::new())),
        Value::String(one) => Ok(Some(vec![one])),
        Value::Array(items) => {
            items.into_iter().map(|i| i.as_str().map(str::to_owned).ok_or(NotAList)).collect::<Result<_, _>>().map(Some)
        }
        _ => Err(NotAList),
    }
}

/// Seconds as JSON: a whole number when it is one, else a fraction.
fn seconds(ms: i64) -> Value {
    if ms % 1000 == 0 {
        json!(ms / 1000)
    } else {
        json!(ms as f64 / 1000.0)
    }
}

/// A workgroup as the admin API shows it (times in seconds).
pub fn workgroup_json(workgroup: &WorkgroupRecord, hosts: &Hosts) -> Value {
    json!({
        "name": workgroup.name,
        "jid": hosts.render(&Address::workgroup(workgroup.name.as_str())),
        "description": workgroup.description,
        "members": workgroup.members,
        "memberGroups": workgroup.member_groups,
        "open": workgroup.open,
        "maxChats": workgroup.max_chats,
        "offerTimeout": seconds(workgroup.offer_timeout_ms),
        "requestTimeout": seconds(workgroup.request_timeout_ms),
    })
}

/// A roster item as the chat and admin APIs show it, without presence.
pub fn roster_item_json(item: &RosterItem, hosts: &Hosts) -> Value {
    json!({
        "jid": hosts.render(&Address::user(item.contact.as_str())),
        "nickname": item.nickname,
        "subscriptionType": item.subscription.code(),
        "groups": item.groups,
        "ask": if item.ask_out { Some("subscribe") } else { None },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_actors::model::records::{RoomConfig, Subscription};

    fn hosts() -> Hosts {
        Hosts::new("d", "conference")
    }

    #[test]
    fn a_room_shows_the_password_to_the_admin_only() {
        let mut room =
            RoomRecord::new("hall".into(), RoomConfig { password: Some("pw".into()), ..RoomConfig::default() });
        room.affiliations.insert("ann".into(), Affiliation::Owner);
        room.affiliations.insert("eve".into(), Affiliation::Outcast);
        let user = room_json(&room, &hosts(), 2, false);
        assert_eq!(user["jid"], "hall@conference.d");
        assert_eq!(user["owners"], json!(["ann@d"]));
        assert_eq!(user["passwordProtected"], true);
        assert_eq!(user["occupantCount"], 2);
        assert!(user.get("password").is_none() && user.get("outcasts").is_none());
        let admin = room_json(&room, &hosts(), 2, true);
        assert_eq!(admin["password"], "pw");
        assert_eq!(admin["outcasts"], json!(["eve@d"]));
    }

    #[test]
    fn a_workgroup_shows_its_timeouts_in_seconds() {
        let workgroup = WorkgroupRecord {
            name: "sales".into(),
            description: String::new(),
            members: ["ann".to_owned()].into(),
            member_groups: Default::default(),
            open: true,
            max_chats: 2,
            offer_timeout_ms: 20_000,
            request_timeout_ms: 1_500,
            created_ms: 0,
            modified_ms: 0,
        };
        let value = workgroup_json(&workgroup, &hosts());
        assert_eq!(value["jid"], "sales@workgroup.d");
        assert_eq!(value["offerTimeout"], 20);
        assert_eq!(value["requestTimeout"], 1.5);
    }

    #[test]
    fn a_roster_item_shows_its_subscription_code_and_pending_ask() {
        let mut item = RosterItem::new("ann", "bob");
        item.subscription = Subscription::From;
        item.ask_out = true;
        let value = roster_item_json(&item, &hosts());
        assert_eq!(
            value,
            json!({"jid": "bob@d", "nickname": null, "subscriptionType": 2, "groups": [], "ask": "subscribe"})
        );
    }
}
