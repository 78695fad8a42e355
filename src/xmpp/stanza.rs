//! What a stanza from a station means: `<message>`, `<presence>` and `<iq>` turned into the
//! core's messages (the same ones the JSON doors send), and the replies they produce.
//!
//! Both XMPP doors call [`dispatch`] with the station's full address; the `from` a client
//! wrote is ignored (the server stamps it). A refusal comes back as [`Refused`]: the POST
//! door answers it as an HTTP status, the websocket door as a stanza error.

use actix::Addr;
use std::future::Future;
use std::pin::Pin;
use switchboard_actors::user_session::UserSession;

use actix_web::http::StatusCode;
use switchboard_actors::fastpath::registry::{AnswerOffer, Ask, UserDepart};
use switchboard_actors::muc::conference::{FindRoom, PostTo};
use switchboard_actors::muc::room::{Invite, Post, SendPrivate};
use switchboard_actors::roster::{RosterOp, Subscription};
use switchboard_actors::router::{ChangeRoster, RouteError, SendChatState, Submit};
use switchboard_actors::{Jid, MessageKind, NewMessage};

use super::xml::Element;
use super::{blocking, mam, ns};
use crate::error::ApiError;
use crate::inbound::{check_message_body, parse_chat_state, parse_presence, parse_recipient};
use crate::requests::{self, OwnStation};
use crate::requests::{deliver_invitations, require_account};
use crate::state::AppState;
use crate::vcard;

/// A stanza refused, with its RFC 6120 §8.3.3 condition and the HTTP status it maps to.
#[derive(Debug, Clone)]
pub struct Refused {
    pub condition: &'static str,
    pub error_type: &'static str,
    pub status: StatusCode,
    pub message: String,
}

impl Refused {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Refused {
            condition: "bad-request",
            error_type: "modify",
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    pub fn unsupported(message: impl Into<String>) -> Self {
        Refused {
            condition: "service-unavailable",
            error_type: "cancel",
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    pub fn into_api(self) -> ApiError {
        let exception = match self.status {
            StatusCode::NOT_FOUND => "NotFoundException",
            StatusCode::FORBIDDEN => "NotAllowedException",
            StatusCode::CONFLICT => "ConflictException",
            StatusCode::PAYLOAD_TOO_LARGE => "PayloadTooLargeException",
            StatusCode::SERVICE_UNAVAILABLE => "ServiceUnavailableException",
            _ => "IllegalArgumentException",
        };
        ApiError::new(self.status, exception, self.message)
    }
}

impl From<ApiError> for Refused {
    fn from(e: ApiError) -> Self {
        // A domain refusal names its condition; only the door's own errors go by status.
        let (condition, error_type) = match e.condition {
            Some(condition) => (condition.as_str(), condition.error_type()),
            None => by_status(&e),
        };
        Refused { condition, error_type, status: e.status, message: e.message }
    }
}

/// The condition for an error the door raised itself, from its HTTP status.
fn by_status(e: &ApiError) -> (&'static str, &'static str) {
    match e.status {
        StatusCode::NOT_FOUND => ("item-not-found", "cancel"),
        StatusCode::FORBIDDEN => ("forbidden", "auth"),
        StatusCode::UNAUTHORIZED => ("not-authorized", "auth"),
        StatusCode::CONFLICT => ("conflict", "cancel"),
        StatusCode::PAYLOAD_TOO_LARGE => ("policy-violation", "modify"),
        StatusCode::SERVICE_UNAVAILABLE => ("service-unavailable", "wait"),
        StatusCode::TOO_MANY_REQUESTS => ("resource-constraint", "wait"),
        s if s.is_server_error() => ("internal-server-error", "wait"),
        _ => ("bad-request", "modify"),
    }
}

impl From<RouteError> for Refused {
    fn from(e: RouteError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<actix::MailboxError> for Refused {
    fn from(e: actix::MailboxError) -> Self {
        ApiError::from(e).into()
    }
}

/// The error form of `original`, sent back to `to` (RFC 6120 §8.3).
pub fn error_reply(original: &Element, refused: &Refused, to: &str) -> Element {
    let mut reply = Element::new(&original.name, ns::CLIENT).attr("type", "error").attr("to", to);
    if let Some(from) = original.get_attr("to") {
        reply.set_attr("from", from);
    }
    if let Some(id) = original.get_attr("id") {
        reply.set_attr("id", id);
    }
    let error = Element::new("error", ns::CLIENT)
        .attr("type", refused.error_type)
        .child(Element::new(refused.condition, ns::STANZAS))
        .child(Element::new("text", ns::STANZAS).text(refused.message.clone()));
    reply.child(error)
}

/// The stanza kinds a station may send.
pub fn is_stanza(el: &Element) -> bool {
    el.ns == ns::CLIENT && matches!(el.name.as_str(), "message" | "presence" | "iq")
}

/// Where a stanza comes from: a station's full address.
pub struct Origin<'a> {
    pub state: &'a AppState,
    pub username: &'a str,
    pub resource: &'a str,
    /// The user's session (`None` until the stream is bound to a station).
    pub session: Option<&'a Addr<UserSession>>,
}

impl Origin<'_> {
    /// The sending station, for requests to the user's own session.
    fn own(&self) -> Result<OwnStation<'_>, Refused> {
        let session = self.session.ok_or_else(|| Refused::bad_request("the stream is not bound to a resource yet"))?;
        Ok(OwnStation { username: self.username, resource: self.resource, session })
    }

    fn full(&self) -> String {
        format!("{}@{}/{}", self.username, self.state.domain(), self.resource)
    }

    fn jid(&self) -> Result<Jid, Refused> {
        Ok(parse_recipient(&self.full(), self.state.domain())?)
    }

    /// The room's key when `to` is on one of the MUC services: (`room`, nick).
    fn room_address<'t>(&self, to: &'t str) -> Option<(String, Option<&'t str>)> {
        let (bare, nick) = match to.split_once('/') {
            Some((bare, nick)) => (bare, Some(nick)),
            None => (to, None),
        };
        Some((self.state.muc.room_of_address(bare)?, nick))
    }

    fn result_for(&self, iq: &Element) -> Element {
        let mut reply = Element::new("iq", ns::CLIENT)
            .attr("type", "result")
            .attr("id", iq.get_attr("id").unwrap_or_default())
            .attr("to", self.full());
        if let Some(from) = iq.get_attr("to") {
            reply.set_attr("from", from);
        }
        reply
    }
}

/// Carries out one stanza; replies (IQ results, IQ errors for unsupported queries) go back
/// to the station.
pub async fn dispatch(origin: &Origin<'_>, stanza: &Element) -> Result<Vec<Element>, Refused> {
    match stanza.name.as_str() {
        "message" => message(origin, stanza).await.map(|()| Vec::new()),
        "presence" => presence(origin, stanza).await.map(|()| Vec::new()),
        "iq" => iq(origin, stanza).await,
        other => {
            Err(Refused::bad_request(format!("<{other}> is not a stanza; expected <message>, <presence> or <iq>")))
        }
    }
}

fn check_body(origin: &Origin<'_>, body: &str) -> Result<(), Refused> {
    Ok(check_message_body(body, origin.state.config.limits.max_message_chars)?)
}

async fn message(origin: &Origin<'_>, el: &Element) -> Result<(), Refused> {
    let state = origin.state;
    let kind = el.get_attr("type").unwrap_or("normal");
    if kind == "error" {
        return Ok(());
    }
    let to = el.get_attr("to").ok_or_else(|| Refused::bad_request("a <message> needs a 'to' address"))?;
    let body = el.child_text("body", ns::CLIENT).filter(|b| !b.trim().is_empty());
    if let Some((room, nick)) = origin.room_address(to) {
        let found = state.conference.send(FindRoom { name: room.to_owned() }).await?;
        let room_addr =
            found.ok_or_else(|| ApiError::from(switchboard_actors::muc::RoomError::NotFound(room.clone())))?;
        if let Some(invite) = el.find("x", ns::MUC_USER).and_then(|x| x.find("invite", ns::MUC_USER)) {
            let invitee = invite.get_attr("to").ok_or_else(|| Refused::bad_request("<invite> needs a 'to'"))?;
            let invitee = parse_recipient(invitee, state.domain())?.user.to_string();
            let reason = invite.child_text("reason", ns::MUC_USER).unwrap_or_default();
            let invite = Invite {
                inviter: Some((origin.username.to_owned(), origin.resource.to_owned())),
                invitees: vec![invitee],
                reason,
            };
            deliver_invitations(state, &room_addr, &room, invite).await?;
            return Ok(());
        }
        if let (Some(to_nick), true) = (nick, kind != "groupchat") {
            // A private message to one occupant (XEP-0045 §7.5).
            let body = body.ok_or_else(|| Refused::bad_request("a private message needs a <body>"))?;
            check_body(origin, &body)?;
            let id = el.get_attr("id").map_or_else(|| switchboard_actors::random::random_hex(8), str::to_owned);
            let private = SendPrivate {
                username: origin.username.to_owned(),
                resource: origin.resource.to_owned(),
                to_nick: to_nick.to_owned(),
                body,
                id,
            };
            room_addr
                .send(private)
                .await
                .map_err(|_| ApiError::from(switchboard_actors::muc::RoomError::NotFound(room.clone())))?
                .map_err(ApiError::from)?;
            return Ok(());
        }
        if kind != "groupchat" {
            return Err(Refused::bad_request(
                "messages to a room are type 'groupchat'; a private message goes to room@service/nick",
            ));
        }
        let body = body.ok_or_else(|| Refused::bad_request("a groupchat message needs a <body>"))?;
        check_body(origin, &body)?;
        let post =
            Post { username: origin.username.to_owned(), resource: origin.resource.to_owned(), body, data: None };
        room_addr
            .send(post)
            .await
            .map_err(|_| ApiError::from(switchboard_actors::muc::RoomError::NotFound(room.clone())))?
            .map_err(ApiError::from)?;
        return Ok(());
    }
    if let Some(body) = body {
        let message = new_message(origin, el, to, kind, body)?;
        state.router.send(Submit { message }).await??;
        return Ok(());
    }
    let recipient = parse_recipient(to, state.domain())?;
    let from = origin.jid()?;
    let chat_state = el.elements().find(|c| c.ns == ns::CHAT_STATES);
    match chat_state {
        Some(chat_state) => {
            let chat_state = parse_chat_state(&chat_state.name)?;
            state.router.send(SendChatState { from, to: recipient, state: chat_state }).await??;
            Ok(())
        }
        None => Err(Refused::bad_request("a <message> needs a <body> or a chat state")),
    }
}

/// A 1:1 message with a body, as the core's [`NewMessage`].
fn new_message(origin: &Origin<'_>, el: &Element, to: &str, kind: &str, body: String) -> Result<NewMessage, Refused> {
    check_body(origin, &body)?;
    let kind = match kind {
        "chat" => MessageKind::Chat,
        "headline" => MessageKind::Headline,
        "normal" => MessageKind::Normal,
        other => {
            return Err(Refused::bad_request(format!(
                "message type '{other}' is not one of chat, normal, headline, groupchat"
            )))
        }
    };
    let to = parse_recipient(to, origin.state.domain())?;
    Ok(NewMessage {
        from: origin.jid()?,
        to,
        kind,
        body,
        data: None,
        client_id: el.get_attr("id").map(str::to_owned),
        expires_ms: None,
    })
}

/// Whether a pipelined message was stored: resolves after its commit.
pub type Submitted = Pin<Box<dyn Future<Output = Result<(), Refused>>>>;

/// The pipelined path for the commonest stanzas, a 1:1 message with a body and a groupchat
/// message with a body: it is handed to the router (or to the room, through the conference)
/// before this returns, so stanzas keep their order, and the returned future only reports
/// whether it was stored. `None` for every other stanza (invitations among them), which goes
/// through [`dispatch`].
pub fn submit_message(origin: &Origin<'_>, el: &Element) -> Option<Result<Submitted, Refused>> {
    if el.name != "message" {
        return None;
    }
    let kind = el.get_attr("type").unwrap_or("normal");
    let to = el.get_attr("to")?;
    if kind == "error" {
        return None;
    }
    if let Some((room, _)) = origin.room_address(to) {
        let invites = el.find("x", ns::MUC_USER).is_some_and(|x| x.find("invite", ns::MUC_USER).is_some());
        if kind != "groupchat" || invites {
            return None;
        }
        let body = el.child_text("body", ns::CLIENT).filter(|b| !b.trim().is_empty())?;
        return Some(check_body(origin, &body).map(|()| {
            let post =
                Post { username: origin.username.to_owned(), resource: origin.resource.to_owned(), body, data: None };
            let archived = origin.state.conference.send(PostTo { room: room.to_owned(), post });
            Box::pin(async move {
                archived.await?.map_err(ApiError::from)?;
                Ok(())
            }) as Submitted
        }));
    }
    if kind == "groupchat" {
        return None;
    }
    let body = el.child_text("body", ns::CLIENT).filter(|b| !b.trim().is_empty())?;
    Some(new_message(origin, el, to, kind, body).map(|message| {
        let stored = origin.state.router.send(Submit { message });
        Box::pin(async move {
            stored.await??;
            Ok(())
        }) as Submitted
    }))
}

async fn presence(origin: &Origin<'_>, el: &Element) -> Result<(), Refused> {
    let state = origin.state;
    let kind = el.get_attr("type");
    let Some(to) = el.get_attr("to") else {
        // Broadcast presence: this station's availability.
        let (show, priority) = match kind {
            None => (
                el.child_text("show", ns::CLIENT),
                el.child_text("priority", ns::CLIENT).and_then(|p| p.trim().parse::<i64>().ok()),
            ),
            Some("unavailable") => (Some("offline".to_owned()), None),
            Some(other) => return Err(Refused::bad_request(format!("presence type '{other}' needs a 'to'"))),
        };
        let presence = parse_presence(show.as_deref(), el.child_text("status", ns::CLIENT), priority)?;
        requests::set_presence(origin.own()?, presence).await?;
        return Ok(());
    };
    if let Some((room, nick)) = origin.room_address(to) {
        let room = room.to_owned();
        match kind {
            None => {
                let nick = nick.filter(|n| !n.is_empty()).ok_or_else(|| Refused {
                    condition: "jid-malformed",
                    ..Refused::bad_request("joining a room needs room@service/nick")
                })?;
                let password = el.find("x", ns::MUC).and_then(|x| x.child_text("password", ns::MUC));
                requests::enter_room(origin.own()?, room, nick.to_owned(), password).await?;
            }
            Some("unavailable") => {
                requests::exit_room(origin.own()?, room).await?;
            }
            Some(other) => return Err(Refused::bad_request(format!("presence type '{other}' is not for rooms"))),
        }
        return Ok(());
    }
    let contact = parse_recipient(to, state.domain())?.user.to_string();
    let op = match kind {
        Some("subscribe") | Some("subscribed") => RosterOp::Add { nickname: None, groups: Vec::new() },
        Some("unsubscribe") | Some("unsubscribed") => RosterOp::Remove,
        // Directed availability to a user is not kept (presence is per user, to subscribers).
        None | Some("unavailable") | Some("probe") => return Ok(()),
        Some(other) => return Err(Refused::bad_request(format!("unknown presence type '{other}'"))),
    };
    let change = ChangeRoster { owner: origin.username.to_owned(), contact, op };
    match state.router.send(change).await? {
        // Asking again, or cancelling what is not there, changes nothing: not an error.
        Ok(_)
        | Err(RouteError::Store(switchboard_actors::StoreError::Conflict(_)))
        | Err(RouteError::Store(switchboard_actors::StoreError::NotFound(_))) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn iq(origin: &Origin<'_>, el: &Element) -> Result<Vec<Element>, Refused> {
    let kind = el.get_attr("type").unwrap_or_default();
    if matches!(kind, "result" | "error") {
        return Ok(Vec::new());
    }
    if !matches!(kind, "get" | "set") {
        return Err(Refused::bad_request("an <iq> needs type get, set, result or error"));
    }
    if el.get_attr("id").is_none_or(str::is_empty) {
        return Err(Refused::bad_request("an <iq> needs an 'id'"));
    }
    let payload = el.elements().next().ok_or_else(|| Refused::bad_request("an <iq> needs one payload element"))?;
    let reply = match (kind, payload.ns.as_str(), payload.name.as_str()) {
        ("get", ns::ROSTER, "query") => roster_get(origin, el).await?,
        ("set", ns::ROSTER, "query") => roster_set(origin, el, payload).await?,
        ("get", ns::PING, "ping") | ("set", ns::SESSION, "session") => origin.result_for(el),
        ("get", ns::DISCO_INFO, "query") => disco_info(origin, el)?,
        ("get", ns::DISCO_ITEMS, "query") => disco_items(origin, el),
        (_, blocking::NS, _) if blocking::is_command(kind, payload) => {
            blocking::handle(origin.state, origin.username, origin.result_for(el), payload).await?
        }
        ("set", mam::NS, "query") => {
            let whose = archive_of(origin, el)?;
            return Ok(mam::query(
                origin.state,
                origin.username,
                &origin.full(),
                whose,
                origin.result_for(el),
                payload,
            )
            .await?);
        }
        ("get", vcard::NS, "vCard") => vcard_get(origin, el).await?,
        ("set", vcard::NS, "vCard") => vcard_set(origin, el, payload).await?,
        ("set", ns::WORKGROUP, "join-queue") => join_queue(origin, el, payload).await?,
        ("set", ns::WORKGROUP, "depart-queue") => {
            let workgroup = workgroup_of(origin, el)?;
            let user_id = format!("{}@{}", origin.username, origin.state.domain());
            origin.state.fastpath.send(UserDepart { workgroup, user_id }).await?.map_err(ApiError::from)?;
            origin.result_for(el)
        }
        ("set", ns::WORKGROUP, "offer-accept") | ("set", ns::WORKGROUP, "offer-reject") => {
            let offer_id =
                payload.get_attr("id").ok_or_else(|| Refused::bad_request("the offer answer needs an 'id'"))?;
            let answer = AnswerOffer {
                agent: origin.username.to_owned(),
                offer_id: offer_id.to_owned(),
                accept: payload.name == "offer-accept",
            };
            origin.state.fastpath.send(answer).await?.map_err(ApiError::from)?;
            origin.result_for(el)
        }
        _ => {
            let refused = Refused::unsupported(format!("<{} xmlns='{}'/> is not supported", payload.name, payload.ns));
            error_reply(el, &refused, &origin.full())
        }
    };
    Ok(vec![reply])
}

/// Whose archive a MAM query goes to: the user's own, or a room's by its bare address.
fn archive_of(origin: &Origin<'_>, iq: &Element) -> Result<mam::Whose, Refused> {
    let Some(to) = iq.get_attr("to") else {
        return Ok(mam::Whose::Own);
    };
    if let Some((room, nick)) = origin.room_address(to) {
        return match nick {
            None => Ok(mam::Whose::Room(room)),
            Some(_) => Err(Refused::bad_request("a room's archive is at the room's bare address")),
        };
    }
    let jid = parse_recipient(to, origin.state.domain())?;
    if jid.user.as_str() == origin.username && jid.resource.is_none() {
        Ok(mam::Whose::Own)
    } else {
        Err(ApiError::forbidden("a user may query only its own archive and rooms' archives").into())
    }
}

/// `<vCard xmlns='vcard-temp'/>` get (XEP-0054): the user's own (no `to`, or its bare
/// address) or another user's; an empty vCard when none is stored.
async fn vcard_get(origin: &Origin<'_>, iq: &Element) -> Result<Element, Refused> {
    let owner = match iq.get_attr("to") {
        None => origin.username.to_owned(),
        Some(to) => {
            let jid = parse_recipient(to, origin.state.domain())?;
            if jid.resource.is_some() {
                return Err(Refused::bad_request("a vCard belongs to a bare address"));
            }
            jid.user.to_string()
        }
    };
    require_account(origin.state, &owner).await?;
    let stored = origin.state.accounts.vcard(&owner).await.map_err(ApiError::from)?;
    let card = stored.as_deref().and_then(vcard::parse_stored).unwrap_or_else(|| Element::new("vCard", vcard::NS));
    Ok(origin.result_for(iq).child(card))
}

/// `<vCard xmlns='vcard-temp'>` set: the user's own vCard only.
async fn vcard_set(origin: &Origin<'_>, iq: &Element, card: &Element) -> Result<Element, Refused> {
    if let Some(to) = iq.get_attr("to") {
        let jid = parse_recipient(to, origin.state.domain())?;
        if jid.user.as_str() != origin.username || jid.resource.is_some() {
            return Err(ApiError::forbidden("a user may set only its own vCard").into());
        }
    }
    vcard::check_element(card)?;
    let xml = card.to_xml();
    if xml.len() > origin.state.config.limits.max_body_bytes {
        return Err(ApiError::too_large("the vCard is larger than the body limit").into());
    }
    origin.state.accounts.put_vcard(origin.username, Some(xml)).await.map_err(ApiError::from)?;
    Ok(origin.result_for(iq))
}

/// The workgroup an IQ is addressed to (`name@workgroup.{domain}`).
fn workgroup_of(origin: &Origin<'_>, iq: &Element) -> Result<String, Refused> {
    let host = origin.state.fastpath_options.host();
    iq.get_attr("to")
        .and_then(|to| to.strip_suffix(&format!("@{host}")))
        .map(str::to_owned)
        .ok_or_else(|| Refused::bad_request(format!("workgroup requests go to name@{host}")))
}

/// `<join-queue>`: the user queues as itself; the queue's news and the room invitation come
/// to its own stations.
async fn join_queue(origin: &Origin<'_>, iq: &Element, join: &Element) -> Result<Element, Refused> {
    let workgroup = workgroup_of(origin, iq)?;
    let value = |name: &str| {
        join.find("metadata", ns::JIVE_WORKGROUP)
            .and_then(|m| m.elements().find(|v| v.name == "value" && v.get_attr("name") == Some(name)))
            .map(Element::text_content)
    };
    let ask = Ask {
        workgroup,
        user_id: format!("{}@{}", origin.username, origin.state.domain()),
        nickname: value("username").unwrap_or_else(|| origin.username.to_owned()),
        email: value("email").unwrap_or_default(),
        question: value("question").unwrap_or_default(),
        user: Some(origin.username.to_owned()),
    };
    origin.state.fastpath.send(ask).await?.map_err(ApiError::from)?;
    Ok(origin.result_for(iq))
}

fn roster_item(item: &switchboard_actors::roster::RosterItem, domain: &str) -> Element {
    let subscription = match item.subscription {
        Subscription::None => "none",
        Subscription::To => "to",
        Subscription::From => "from",
        Subscription::Both => "both",
    };
    let mut el = Element::new("item", ns::ROSTER)
        .attr("jid", format!("{}@{domain}", item.contact))
        .attr("subscription", subscription)
        .attr("name", item.nickname.clone().unwrap_or_default());
    if item.ask_out {
        el.set_attr("ask", "subscribe");
    }
    for group in &item.groups {
        el = el.text_child("group", ns::ROSTER, group.clone());
    }
    el
}

async fn roster_get(origin: &Origin<'_>, iq: &Element) -> Result<Element, Refused> {
    let contacts = requests::contacts(origin.own()?).await?;
    let mut query = Element::new("query", ns::ROSTER);
    for contact in contacts.iter().filter(|c| c.item.listed) {
        query = query.child(roster_item(&contact.item, origin.state.domain()));
    }
    Ok(origin.result_for(iq).child(query))
}

async fn roster_set(origin: &Origin<'_>, iq: &Element, query: &Element) -> Result<Element, Refused> {
    let item = query.find("item", ns::ROSTER).ok_or_else(|| Refused::bad_request("a roster set needs one <item>"))?;
    let jid = item.get_attr("jid").ok_or_else(|| Refused::bad_request("a roster <item> needs a 'jid'"))?;
    let contact = parse_recipient(jid, origin.state.domain())?.user.to_string();
    let change = |op| ChangeRoster { owner: origin.username.to_owned(), contact: contact.clone(), op };
    if item.get_attr("subscription") == Some("remove") {
        origin.state.router.send(change(RosterOp::Remove)).await??;
        return Ok(origin.result_for(iq));
    }
    let nickname = item.get_attr("name").map(str::to_owned);
    let groups: Vec<String> = item.elements().filter(|g| g.name == "group").map(Element::text_content).collect();
    let added =
        origin.state.router.send(change(RosterOp::Add { nickname: nickname.clone(), groups: groups.clone() })).await?;
    match added {
        Ok(_) => {}
        // Already a contact: a roster set updates the name and groups.
        Err(RouteError::Store(switchboard_actors::StoreError::Conflict(_))) => {
            origin.state.router.send(change(RosterOp::Update { nickname, groups })).await??;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(origin.result_for(iq))
}

fn disco_info(origin: &Origin<'_>, iq: &Element) -> Result<Element, Refused> {
    let domain = origin.state.domain();
    let to = iq.get_attr("to").unwrap_or(domain);
    let muc_host = origin.state.muc.host();
    let (category, kind, name, features): (&str, &str, String, Vec<&str>) = if to == domain {
        (
            "server",
            "im",
            "Switchboard".into(),
            vec![
                ns::DISCO_INFO,
                ns::DISCO_ITEMS,
                ns::PING,
                ns::ROSTER,
                "urn:xmpp:delay",
                vcard::NS,
                blocking::NS,
                mam::NS,
                ns::CARBONS,
            ],
        )
    } else if to == muc_host || origin.state.muc.is_service_host(to) {
        ("conference", "text", "Chat rooms".into(), vec![ns::DISCO_INFO, ns::DISCO_ITEMS, ns::MUC])
    } else if origin.room_address(to).is_some() {
        ("conference", "text", to.split('@').next().unwrap_or_default().into(), vec![ns::DISCO_INFO, ns::MUC, mam::NS])
    } else if to == origin.state.fastpath_options.host() {
        ("collaboration", "workgroup", "Workgroups".into(), vec![ns::DISCO_INFO, ns::WORKGROUP])
    } else {
        return Err(ApiError::not_found("NotFoundException", format!("no disco#info for {to}")).into());
    };
    let mut query = Element::new("query", ns::DISCO_INFO).child(
        Element::new("identity", ns::DISCO_INFO).attr("category", category).attr("type", kind).attr("name", name),
    );
    for feature in features {
        query = query.child(Element::new("feature", ns::DISCO_INFO).attr("var", feature));
    }
    Ok(origin.result_for(iq).child(query))
}

fn disco_items(origin: &Origin<'_>, iq: &Element) -> Element {
    let domain = origin.state.domain();
    let mut query = Element::new("query", ns::DISCO_ITEMS);
    if iq.get_attr("to").unwrap_or(domain) == domain {
        let extra = origin.state.muc.extra_services.all().into_iter().filter(|s| !s.hidden);
        let muc = std::iter::once(origin.state.muc.host()).chain(extra.map(|s| format!("{}.{domain}", s.name)));
        for service in muc.chain([origin.state.fastpath_options.host()]) {
            query = query.child(Element::new("item", ns::DISCO_ITEMS).attr("jid", service));
        }
    }
    origin.result_for(iq).child(query)
}

#[cfg(test)]
mod tests {
    use switchboard_actors::fastpath::FastpathError;
    use switchboard_actors::muc::RoomError;
    use switchboard_actors::StoreError;

    use super::*;

    fn condition(refused: Refused) -> (&'static str, &'static str) {
        (refused.condition, refused.error_type)
    }

    #[test]
    fn a_domain_refusal_keeps_its_own_condition() {
        assert_eq!(condition(RouteError::YouBlocked("bob".into()).into()), ("not-acceptable", "cancel"));
        assert_eq!(condition(RouteError::UnknownUser("zed".into()).into()), ("item-not-found", "cancel"));
        assert_eq!(condition(RouteError::TooManyConnections(4).into()), ("resource-constraint", "wait"));
        assert_eq!(condition(ApiError::from(RoomError::NickTaken("Ann".into())).into()), ("conflict", "cancel"));
        assert_eq!(condition(ApiError::from(RoomError::MembersOnly("hall".into())).into()), ("forbidden", "auth"));
        assert_eq!(condition(ApiError::from(FastpathError::UnknownToken).into()), ("not-authorized", "auth"));
        assert_eq!(condition(ApiError::from(StoreError::Unavailable).into()), ("service-unavailable", "wait"));
    }

    #[test]
    fn a_door_error_maps_by_its_status() {
        assert_eq!(condition(ApiError::too_large("big").into()), ("policy-violation", "modify"));
        assert_eq!(condition(ApiError::bad_request("no").into()), ("bad-request", "modify"));
        assert_eq!(condition(ApiError::forbidden("no").into()), ("forbidden", "auth"));
    }
}
