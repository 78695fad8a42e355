//! XEP-0313 message archive management (`urn:xmpp:mam:2`) over the user's 1:1 archive, the
//! one the history API reads, so messages sent through any door are found, and over a
//! room's archive when the query goes to the room (XEP-0313 §5). A query is a
//! data form (`with`, `start`, `end`) and RSM paging (XEP-0059: `max`, `after`, `before`;
//! an empty `<before/>` asks for the last page). Each match comes as a `<message>` holding a
//! `<result>` with the forwarded original and its `<delay>`; then the IQ result with `<fin>`,
//! `complete` and the page's first and last ids.

use switchboard_actors::clock::{format_stamp, parse_instant};
use switchboard_actors::model::records::{HistoryQuery, RoomHistoryQuery};
use switchboard_actors::muc::room::Describe;
use switchboard_actors::muc::RoomError;

use super::ns;
use super::render::{room_message, stored_message};
use super::xml::Element;
use crate::error::ApiError;
use crate::inbound::parse_username;
use crate::requests::find_room;
use crate::state::AppState;

pub const NS: &str = "urn:xmpp:mam:2";
const RSM: &str = "http://jabber.org/protocol/rsm";
const DATA: &str = "jabber:x:data";

/// A page when the client names no `max`.
const DEFAULT_MAX: usize = 50;

fn field(form: Option<&Element>, var: &str) -> Option<String> {
    form?
        .elements()
        .find(|f| f.name == "field" && f.get_attr("var") == Some(var))
        .and_then(|f| f.find("value", DATA))
        .map(|v| v.text_content().trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn instant(name: &str, raw: Option<String>) -> Result<Option<i64>, ApiError> {
    raw.map(|r| parse_instant(&r).ok_or_else(|| ApiError::bad_request(format!("{name} is not a date and time"))))
        .transpose()
}

fn id(name: &str, raw: &str) -> Result<i64, ApiError> {
    raw.parse().map_err(|_| ApiError::bad_request(format!("RSM <{name}> is not an archive id here")))
}

/// Whose archive a query reads.
pub enum Whose {
    /// The user's own 1:1 archive (no `to`, or the user's bare address).
    Own,
    /// A room's (the query went to its bare address), by room key.
    Room(String),
}

/// The query's page: filters and RSM bounds.
struct Page {
    with: Option<String>,
    start_ms: Option<i64>,
    end_ms: Option<i64>,
    max: usize,
    after: Option<i64>,
    before: Option<i64>,
    /// Paging backwards from `before` (or from the newest, for an empty `<before/>`).
    last_page: bool,
}

impl Page {
    fn parse(state: &AppState, payload: &Element) -> Result<Page, ApiError> {
        let form = payload.find("x", DATA);
        let with = field(form, "with").map(|w| parse_username(&w, state.domain())).transpose()?;
        let start_ms = instant("start", field(form, "start"))?;
        let end_ms = instant("end", field(form, "end"))?;
        let set = payload.find("set", RSM);
        let max = match set.and_then(|s| s.find("max", RSM)) {
            Some(m) => {
                m.text_content().trim().parse::<usize>().map_err(|_| ApiError::bad_request("RSM <max> is a number"))?
            }
            None => DEFAULT_MAX,
        }
        .min(state.config.history.max_limit);
        let after = set.and_then(|s| s.find("after", RSM)).map(|a| id("after", a.text_content().trim())).transpose()?;
        let before = set.and_then(|s| s.find("before", RSM)).map(|b| b.text_content().trim().to_owned());
        let (before, last_page) = match before.as_deref() {
            Some("") => (None, true),
            Some(raw) => (Some(id("before", raw)?), true),
            None => (None, false),
        };
        if before.is_some() && after.is_some() {
            return Err(ApiError::bad_request("RSM takes <before> or <after>, not both"));
        }
        Ok(Page { with, start_ms, end_ms, max, after, before, last_page })
    }

    /// Forward pages start after id 0 (the oldest); backward pages have no `after`.
    fn after(&self) -> Option<i64> {
        if self.last_page {
            None
        } else {
            Some(self.after.unwrap_or(0))
        }
    }
}

/// One archived message: its archive id, stamp, and the stanza as it was delivered.
struct Found {
    id: i64,
    stamp_ms: i64,
    message: Element,
}

/// The query's answer: the matching messages, then `result` with `<fin>`.
pub async fn query(
    state: &AppState,
    username: &str,
    full: &str,
    whose: Whose,
    result: Element,
    payload: &Element,
) -> Result<Vec<Element>, ApiError> {
    let page = Page::parse(state, payload)?;
    // One more than the page, to tell whether it is the last.
    let limit = page.max + 1;
    let (archive_jid, mut found) = match whose {
        Whose::Own => {
            let query = HistoryQuery {
                username: username.to_owned(),
                with: page.with.clone(),
                start_ms: page.start_ms,
                end_ms: page.end_ms,
                keywords: None,
                before: page.before,
                after: page.after(),
                limit,
            };
            let found = state.archive.history(query).await?;
            let found = found
                .iter()
                .map(|m| Found { id: m.id, stamp_ms: m.stamp_ms, message: stored_message(m, &state.hosts) })
                .collect::<Vec<_>>();
            (format!("{username}@{}", state.domain()), found)
        }
        Whose::Room(room) => {
            if page.with.is_some() {
                return Err(ApiError::bad_request("a room's archive is queried without 'with'"));
            }
            let created_ms = readable_room(state, username, &room).await?;
            let query = RoomHistoryQuery {
                room: room.clone(),
                start_ms: page.start_ms.unwrap_or(created_ms).max(created_ms),
                end_ms: page.end_ms,
                before: page.before,
                after: page.after(),
                limit,
            };
            let found = state.archive.room_history(query).await?;
            let found = found
                .iter()
                .map(|m| Found { id: m.id, stamp_ms: m.stamp_ms, message: room_message(m, &state.hosts) })
                .collect::<Vec<_>>();
            (state.muc.room_jid(&room), found)
        }
    };
    let complete = found.len() <= page.max;
    if !complete {
        // The page nearest the anchor: the oldest for a forward page, the newest backwards.
        if page.last_page {
            found.remove(0);
        } else {
            found.pop();
        }
    }
    let queryid = payload.get_attr("queryid");
    let mut replies = Vec::with_capacity(found.len() + 1);
    let (first, last) = (found.first().map(|f| f.id), found.last().map(|f| f.id));
    for Found { id, stamp_ms, message } in found {
        let mut result_el = Element::new("result", NS).attr("id", id.to_string());
        if let Some(q) = queryid {
            result_el = result_el.attr("queryid", q);
        }
        let forwarded = Element::new("forwarded", ns::FORWARD)
            .child(Element::new("delay", ns::DELAY).attr("stamp", format_stamp(stamp_ms)))
            .child(message);
        replies.push(
            Element::new("message", ns::CLIENT)
                .attr("to", full)
                .attr("from", archive_jid.as_str())
                .child(result_el.child(forwarded)),
        );
    }
    let mut rsm = Element::new("set", RSM);
    if let (Some(first), Some(last)) = (first, last) {
        rsm = rsm.text_child("first", RSM, first.to_string()).text_child("last", RSM, last.to_string());
    }
    let fin = Element::new("fin", NS).attr("complete", if complete { "true" } else { "false" }).child(rsm);
    replies.push(result.child(fin));
    Ok(replies)
}

/// A room whose archive `username` may read: one it may see (public and open, or it is
/// affiliated) or is in. Others are not found, as in the room directory. Returns when the
/// room was created: an earlier room of the same name keeps its own archive.
async fn readable_room(state: &AppState, username: &str, room: &str) -> Result<i64, ApiError> {
    let not_found = || ApiError::from(RoomError::NotFound(room.to_owned()));
    let actor = find_room(state, room).await?;
    let view = actor.send(Describe).await.map_err(|_| not_found())??;
    if view.record.visible_to(username) || view.occupants.iter().any(|o| o.username == username) {
        Ok(view.record.created_ms)
    } else {
        Err(not_found())
    }
}
