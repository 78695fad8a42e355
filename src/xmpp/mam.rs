//! XEP-0313 message archive management (`urn:xmpp:mam:2`) over the user's 1:1 archive, the
//! one the history API reads, so messages sent through any door are found. A query is a
//! data form (`with`, `start`, `end`) and RSM paging (XEP-0059: `max`, `after`, `before`;
//! an empty `<before/>` asks for the last page). Each match comes as a `<message>` holding a
//! `<result>` with the forwarded original and its `<delay>`; then the IQ result with `<fin>`,
//! `complete` and the page's first and last ids.

use switchboard_actors::clock::{format_stamp, parse_instant};
use switchboard_actors::model::records::HistoryQuery;

use super::ns;
use super::render::stored_message;
use super::xml::Element;
use crate::error::ApiError;
use crate::inbound::parse_username;
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

/// The query's answer: the matching messages, then `result` with `<fin>`.
pub async fn query(
    state: &AppState,
    username: &str,
    full: &str,
    result: Element,
    payload: &Element,
) -> Result<Vec<Element>, ApiError> {
    let form = payload.find("x", DATA);
    let with = field(form, "with").map(|w| parse_username(&w, state.domain())).transpose()?;
    let start_ms = instant("start", field(form, "start"))?;
    let end_ms = instant("end", field(form, "end"))?;
    let set = payload.find("set", RSM);
    let max_allowed = state.config.history.max_limit;
    let max = match set.and_then(|s| s.find("max", RSM)) {
        Some(m) => {
            m.text_content().trim().parse::<usize>().map_err(|_| ApiError::bad_request("RSM <max> is a number"))?
        }
        None => DEFAULT_MAX,
    }
    .min(max_allowed);
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
    // One more than the page, to tell whether it is the last. Without `before`, pages run
    // forward from the oldest (after id 0).
    let query = HistoryQuery {
        username: username.to_owned(),
        with,
        start_ms,
        end_ms,
        keywords: None,
        before,
        after: if last_page { None } else { Some(after.unwrap_or(0)) },
        limit: max + 1,
    };
    let mut found = state.archive.history(query).await?;
    let complete = found.len() <= max;
    if !complete {
        // The page nearest the anchor: the oldest for a forward page, the newest backwards.
        if last_page {
            found.remove(0);
        } else {
            found.pop();
        }
    }
    let queryid = payload.get_attr("queryid");
    let mut replies = Vec::with_capacity(found.len() + 1);
    for message in &found {
        let mut result_el = Element::new("result", NS).attr("id", message.id.to_string());
        if let Some(q) = queryid {
            result_el = result_el.attr("queryid", q);
        }
        let forwarded = Element::new("forwarded", ns::FORWARD)
            .child(Element::new("delay", ns::DELAY).attr("stamp", format_stamp(message.stamp_ms)))
            .child(stored_message(message, &state.hosts));
        replies.push(
            Element::new("message", ns::CLIENT)
                .attr("to", full)
                .attr("from", format!("{username}@{}", state.domain()))
                .child(result_el.child(forwarded)),
        );
    }
    let mut rsm = Element::new("set", RSM);
    if let (Some(first), Some(last)) = (found.first(), found.last()) {
        rsm = rsm.text_child("first", RSM, first.id.to_string()).text_child("last", RSM, last.id.to_string());
    }
    let fin = Element::new("fin", NS).attr("complete", if complete { "true" } else { "false" }).child(rsm);
    replies.push(result.child(fin));
    Ok(replies)
}
