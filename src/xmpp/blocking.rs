//! XEP-0191 blocking commands over the user's blocklist (the one `…/blocklist` and every door
//! enforce): `<blocklist/>` get, `<block>` and `<unblock>` (no items: everyone) sets.

use switchboard_actors::router::{Blocklist, SetBlock};

use super::xml::Element;
use crate::error::ApiError;
use crate::inbound::parse_username;
use crate::state::AppState;

pub const NS: &str = "urn:xmpp:blocking";

/// The items' users (`jid` attributes), each an account's bare address.
fn items(state: &AppState, payload: &Element) -> Result<Vec<String>, ApiError> {
    payload
        .elements()
        .filter(|e| e.name == "item")
        .map(|item| {
            let jid = item.get_attr("jid").ok_or_else(|| ApiError::bad_request("a blocking <item> needs a 'jid'"))?;
            parse_username(jid, state.domain())
        })
        .collect()
}

/// The IQ's answer: `<blocklist>` with the blocked users, or an empty result for a set.
pub async fn handle(state: &AppState, username: &str, result: Element, payload: &Element) -> Result<Element, ApiError> {
    match payload.name.as_str() {
        "blocklist" => {
            let blocked = state.router.send(Blocklist { username: username.to_owned() }).await?;
            let mut list = Element::new("blocklist", NS);
            for user in blocked {
                list = list.child(Element::new("item", NS).attr("jid", format!("{user}@{}", state.domain())));
            }
            Ok(result.child(list))
        }
        "block" | "unblock" => {
            let on = payload.name == "block";
            let mut users = items(state, payload)?;
            if on && users.is_empty() {
                return Err(ApiError::bad_request("<block> names at least one <item jid=…/>"));
            }
            if !on && users.is_empty() {
                users = state.router.send(Blocklist { username: username.to_owned() }).await?;
            }
            for blocked in users {
                state.router.send(SetBlock { blocker: username.to_owned(), blocked, on }).await??;
            }
            Ok(result)
        }
        other => Err(ApiError::bad_request(format!("<{other} xmlns='{NS}'/> is not a blocking command"))),
    }
}

/// Whether the IQ is a blocking command this module answers.
pub fn is_command(kind: &str, payload: &Element) -> bool {
    payload.ns == NS && matches!((kind, payload.name.as_str()), ("get", "blocklist") | ("set", "block" | "unblock"))
}
