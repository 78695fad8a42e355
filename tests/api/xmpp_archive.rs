//! XMPP over the shared archive and blocklist: XEP-0313 queries page through messages that
//! were sent over REST and `/ws`, and XEP-0191 blocking commands change the same blocklist
//! the REST API shows and every door enforces.

use serde_json::json;
use switchboard::xmpp::xml::Element;

use crate::helpers::*;
use crate::xmpp::Xmpp;

const MAM: &str = "urn:xmpp:mam:2";

/// One MAM query of the user's own archive: the bodies it returned, in order, and its `<fin>`.
async fn mam(x: &mut Xmpp, id: &str, form: &str, rsm: &str) -> (Vec<String>, Element) {
    mam_of(x, None, id, form, rsm).await
}

/// One MAM query to `to` (a room), or the user's own archive.
async fn mam_of(x: &mut Xmpp, to: Option<&str>, id: &str, form: &str, rsm: &str) -> (Vec<String>, Element) {
    let to = to.map(|to| format!(" to='{to}'")).unwrap_or_default();
    x.send(&format!(
        "<iq xmlns='jabber:client' type='set' id='{id}'{to}><query xmlns='{MAM}' queryid='q-{id}'>\
         <x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>{MAM}</value></field>{form}</x>\
         <set xmlns='http://jabber.org/protocol/rsm'>{rsm}</set></query></iq>"
    ))
    .await;
    let mut bodies = Vec::new();
    loop {
        let el = x.next().await;
        if el.name == "iq" {
            assert_eq!((el.get_attr("id"), el.get_attr("type")), (Some(id), Some("result")), "{}", el.to_xml());
            return (bodies, el.find("fin", MAM).expect("a <fin>").clone());
        }
        // A live or offline delivery may come in between; only results are counted.
        let Some(result) = el.find("result", MAM) else {
            assert!(el.name == "message" || el.name == "presence", "not a MAM result: {}", el.to_xml());
            continue;
        };
        assert_eq!(result.get_attr("queryid"), Some(format!("q-{id}").as_str()));
        let forwarded = result.find("forwarded", "urn:xmpp:forward:0").unwrap();
        assert!(forwarded.find("delay", "urn:xmpp:delay").and_then(|d| d.get_attr("stamp")).is_some());
        let message = forwarded.find("message", "jabber:client").unwrap();
        if let Some(room) = to_room(&to) {
            assert_eq!(el.get_attr("from"), Some(room.as_str()), "results come from the room");
            assert_eq!(message.get_attr("type"), Some("groupchat"));
            assert!(message.get_attr("from").is_some_and(|f| f.starts_with(&format!("{room}/"))));
        }
        bodies.push(message.find("body", "jabber:client").unwrap().text_content());
    }
}

/// The room address in a ` to='…'` attribute text.
fn to_room(to: &str) -> Option<String> {
    to.strip_prefix(" to='").and_then(|t| t.strip_suffix('\'')).map(str::to_owned)
}

fn rsm_last(fin: &Element) -> String {
    fin.find("set", "http://jabber.org/protocol/rsm")
        .unwrap()
        .find("last", "http://jabber.org/protocol/rsm")
        .unwrap()
        .text_content()
}

#[actix_web::test]
async fn mam_pages_through_messages_sent_on_other_doors_and_blocking_commands_share_the_blocklist() {
    let app = spawn_app().await;
    for name in ["ann", "bob", "cy"] {
        app.create_user(name).await;
    }
    let stream = app.login("ann").await;
    for i in 0..5 {
        assert_eq!(app.send("ann", &stream, "bob", &format!("rest {i}")).await.status, 200);
    }
    let mut ws = app.ws("bob", "").await;
    for i in 0..4 {
        ws.send(json!({"op": "message", "to": "ann@localhost", "body": format!("ws {i}"), "id": format!("m{i}")}))
            .await;
        assert_eq!(ws.next_of_type("ack").await["id"], format!("m{i}"));
    }
    let cy = app.login("cy").await;
    assert_eq!(app.send("cy", &cy, "bob", "from cy").await.status, 200);

    let mut x = Xmpp::login(&app, "bob", "pw-bob").await;
    let with_ann = "<field var='with'><value>ann@localhost</value></field>";
    let mut seen = Vec::new();
    let mut rsm = "<max>4</max>".to_owned();
    for page in 0.. {
        let (bodies, fin) = mam(&mut x, &format!("p{page}"), with_ann, &rsm).await;
        seen.extend(bodies);
        if fin.get_attr("complete") == Some("true") {
            break;
        }
        rsm = format!("<max>4</max><after>{}</after>", rsm_last(&fin));
        assert!(page < 5, "paging does not end");
    }
    let expected: Vec<String> = (0..5).map(|i| format!("rest {i}")).chain((0..4).map(|i| format!("ws {i}"))).collect();
    assert_eq!(seen, expected, "every message with ann once, oldest first");
    // The last page, and a filter that matches nothing.
    let (last, fin) = mam(&mut x, "last", "", "<max>2</max><before/>").await;
    assert_eq!(last, ["ws 3", "from cy"], "the newest two of every conversation");
    assert_eq!(fin.get_attr("complete"), Some("false"));
    let (none, fin) = mam(&mut x, "future", "<field var='start'><value>2999-01-01T00:00:00Z</value></field>", "").await;
    assert!(none.is_empty());
    assert_eq!(fin.get_attr("complete"), Some("true"));
    x.send(&format!("<iq xmlns='jabber:client' type='set' id='bad'><query xmlns='{MAM}'><set xmlns='http://jabber.org/protocol/rsm'><max>x</max></set></query></iq>")).await;
    let error = x.next().await.to_xml();
    assert!(error.contains("type=\"error\"") || error.contains("type='error'"), "{error}");

    // Blocking: bob blocks ann over XMPP; REST shows it and ann can no longer write to bob.
    x.send("<iq xmlns='jabber:client' type='set' id='b1'><block xmlns='urn:xmpp:blocking'><item jid='ann@localhost'/></block></iq>").await;
    let done = x.next_where("the block's result", |e| e.get_attr("id") == Some("b1")).await;
    assert_eq!(done.get_attr("type"), Some("result"));
    x.send("<iq xmlns='jabber:client' type='get' id='b2'><blocklist xmlns='urn:xmpp:blocking'/></iq>").await;
    let list = x.next_where("the blocklist", |e| e.get_attr("id") == Some("b2")).await.to_xml();
    assert!(list.contains("ann@localhost"), "{list}");
    let bob_stream = app.login("bob").await;
    let rest = app.get(&format!("/restapi/v1/chat/{bob_stream}/blocklist"), ("bob", "pw-bob")).await;
    assert_eq!(rest.json()["blocked"], json!(["ann@localhost"]));
    assert_ne!(app.send("ann", &stream, "bob", "blocked?").await.status, 200, "a blocked user cannot write");
    // Unblocking with no items unblocks everyone.
    x.send("<iq xmlns='jabber:client' type='set' id='b3'><unblock xmlns='urn:xmpp:blocking'/></iq>").await;
    let done = x.next_where("the unblock's result", |e| e.get_attr("id") == Some("b3")).await;
    assert_eq!(done.get_attr("type"), Some("result"));
    let rest = app.get(&format!("/restapi/v1/chat/{bob_stream}/blocklist"), ("bob", "pw-bob")).await;
    assert_eq!(rest.json()["blocked"], json!([]));
    x.send("<iq xmlns='jabber:client' type='set' id='b4'><block xmlns='urn:xmpp:blocking'/></iq>").await;
    let refused = x.next_where("the empty block's answer", |e| e.get_attr("id") == Some("b4")).await;
    assert!(refused.to_xml().contains("bad-request"));
}

/// Whether `e` is a message whose body is `body`.
fn says(e: &Element, body: &str) -> bool {
    e.name == "message" && e.find("body", "jabber:client").is_some_and(|b| b.text_content() == body)
}

/// A blocklist push (XEP-0191 §3.3): `<block>` or `<unblock>` naming `jid`.
fn is_push(e: &Element, command: &str, jid: &str) -> bool {
    e.name == "iq"
        && e.get_attr("type") == Some("set")
        && e.find(command, "urn:xmpp:blocking")
            .and_then(|c| c.find("item", "urn:xmpp:blocking"))
            .is_some_and(|item| item.get_attr("jid") == Some(jid))
}

#[actix_web::test]
async fn a_block_from_any_door_is_pushed_to_every_resource_of_the_user() {
    let app = spawn_app().await;
    for name in ["ann", "bob"] {
        app.create_user(name).await;
    }
    let mut phone = Xmpp::login(&app, "bob", "pw-bob").await;
    let mut laptop = Xmpp::login(&app, "bob", "pw-bob").await;
    assert_ne!(phone.jid, laptop.jid, "two resources");
    phone.send("<iq xmlns='jabber:client' type='set' id='b1'><block xmlns='urn:xmpp:blocking'><item jid='ann@localhost'/></block></iq>").await;
    let done = phone.next_where("the block's result", |e| e.get_attr("id") == Some("b1")).await;
    assert_eq!(done.get_attr("type"), Some("result"));
    let push = laptop.next_where("a block push", |e| is_push(e, "block", "ann@localhost")).await;
    assert_eq!(push.get_attr("from"), None, "a push comes from the user's own account");
    // The client answers the push; the server takes the answer quietly.
    laptop.send(&format!("<iq xmlns='jabber:client' type='result' id='{}'/>", push.get_attr("id").unwrap())).await;
    phone.next_where("the block push on the sending resource too", |e| is_push(e, "block", "ann@localhost")).await;

    // Unblocking over REST reaches both resources.
    let stream = app.login("bob").await;
    let unblocked = app.delete(&format!("/restapi/v1/chat/{stream}/blocklist/ann@localhost"), ("bob", "pw-bob")).await;
    assert!(unblocked.status < 300, "{} {}", unblocked.status, unblocked.text());
    for x in [&mut phone, &mut laptop] {
        x.next_where("an unblock push", |e| is_push(e, "unblock", "ann@localhost")).await;
    }
    // Blocking someone already blocked changes nothing and pushes nothing.
    let again = app
        .post_json(&format!("/restapi/v1/chat/{stream}/blocklist/ann@localhost"), ("bob", "pw-bob"), &json!({}))
        .await;
    assert!(again.status < 300, "{} {}", again.status, again.text());
    laptop.next_where("the block push", |e| is_push(e, "block", "ann@localhost")).await;
    let again = app
        .post_json(&format!("/restapi/v1/chat/{stream}/blocklist/ann@localhost"), ("bob", "pw-bob"), &json!({}))
        .await;
    assert!(again.status < 300, "{} {}", again.status, again.text());
    laptop.send("<iq xmlns='jabber:client' type='get' id='ping'><ping xmlns='urn:xmpp:ping'/></iq>").await;
    let next = laptop.next().await;
    assert_eq!(next.get_attr("id"), Some("ping"), "no second push: {}", next.to_xml());
}

#[actix_web::test]
async fn a_rooms_archive_pages_through_what_every_door_said_and_opens_only_to_who_may_see_the_room() {
    let app = spawn_app().await;
    for name in ["ann", "bob", "eve"] {
        app.create_user(name).await;
    }
    let hall = app.post_json("/restapi/v1/chatrooms", app.admin(), &json!({"roomName": "hall"})).await;
    assert_eq!(hall.status, 201, "{}", hall.text());
    let vault = json!({"roomName": "vault", "membersOnly": true, "publicRoom": false, "members": ["ann@localhost"]});
    assert_eq!(app.post_json("/restapi/v1/chatrooms", app.admin(), &vault).await.status, 201);

    // Ann speaks over XMPP, bob over REST.
    let mut ann = Xmpp::login(&app, "ann", "pw-ann").await;
    ann.send("<presence xmlns='jabber:client' to='hall@conference.localhost/annie'><x xmlns='http://jabber.org/protocol/muc'/></presence>").await;
    ann.next_where("ann's self-presence", |e| {
        e.name == "presence" && e.get_attr("from") == Some("hall@conference.localhost/annie")
    })
    .await;
    let bob = app.login("bob").await;
    let joined =
        app.put_json(&format!("/restapi/v1/chat/{bob}/rooms/hall?nick=bobby"), ("bob", "pw-bob"), &json!({})).await;
    assert!(joined.status < 300, "{} {}", joined.status, joined.text());
    for i in 0..3 {
        ann.send(&format!("<message xmlns='jabber:client' to='hall@conference.localhost' type='groupchat' id='a{i}'><body>xmpp {i}</body></message>")).await;
        ann.next_where("ann's echo", |e| says(e, &format!("xmpp {i}"))).await;
        let said = app
            .post_json(
                &format!("/restapi/v1/chat/{bob}/rooms/hall"),
                ("bob", "pw-bob"),
                &json!({"body": format!("rest {i}")}),
            )
            .await;
        assert!(said.status < 300, "{} {}", said.status, said.text());
        ann.next_where("bob's message", |e| says(e, &format!("rest {i}"))).await;
    }

    // Eve is not in the room; an open room's archive is hers to read, page by page.
    let mut eve = Xmpp::login(&app, "eve", "pw-eve").await;
    let hall = Some("hall@conference.localhost");
    let (mut seen, mut rsm) = (Vec::new(), "<max>4</max>".to_owned());
    for page in 0.. {
        let (bodies, fin) = mam_of(&mut eve, hall, &format!("h{page}"), "", &rsm).await;
        seen.extend(bodies);
        if fin.get_attr("complete") == Some("true") {
            break;
        }
        rsm = format!("<max>4</max><after>{}</after>", rsm_last(&fin));
        assert!(page < 3, "paging does not end");
    }
    let expected: Vec<String> = (0..3).flat_map(|i| [format!("xmpp {i}"), format!("rest {i}")]).collect();
    assert_eq!(seen, expected, "each message once, oldest first");
    let (last, fin) = mam_of(&mut eve, hall, "last", "", "<max>2</max><before/>").await;
    assert_eq!((last, fin.get_attr("complete")), (vec!["xmpp 2".to_owned(), "rest 2".to_owned()], Some("false")));
    let (none, _) =
        mam_of(&mut eve, hall, "old", "<field var='end'><value>2000-01-01T00:00:00Z</value></field>", "").await;
    assert!(none.is_empty(), "nothing before the end");
    // Her own archive holds none of it.
    let (own, _) = mam(&mut eve, "own", "", "").await;
    assert!(own.is_empty(), "{own:?}");

    // Refusals: a members-only room to a non-member looks absent; 'with' has no meaning on
    // a room; an occupant's address and another user's archive are not archives to read.
    let refusals = [
        ("vault@conference.localhost", "", "item-not-found"),
        ("hall@conference.localhost", "<field var='with'><value>ann@localhost</value></field>", "bad-request"),
        ("hall@conference.localhost/annie", "", "bad-request"),
        ("ann@localhost", "", "forbidden"),
        ("nowhere@conference.localhost", "", "item-not-found"),
    ];
    for (i, (to, form, condition)) in refusals.into_iter().enumerate() {
        eve.send(&format!(
            "<iq xmlns='jabber:client' type='set' id='r{i}' to='{to}'><query xmlns='{MAM}'>\
             <x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>{MAM}</value></field>{form}</x></query></iq>"
        ))
        .await;
        let answer = eve.next_where("the refusal", |e| e.get_attr("id") == Some(format!("r{i}").as_str())).await;
        assert_eq!(answer.get_attr("type"), Some("error"), "{to}: {}", answer.to_xml());
        assert!(answer.to_xml().contains(condition), "{to}: {condition} in {}", answer.to_xml());
    }
    // A member reads the members-only room's archive; the room's disco lists MAM.
    let (vault_said, fin) = mam_of(&mut ann, Some("vault@conference.localhost"), "v", "", "").await;
    assert!(vault_said.is_empty() && fin.get_attr("complete") == Some("true"));
    ann.send("<iq xmlns='jabber:client' type='get' id='d1' to='hall@conference.localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>").await;
    let info = ann.next_where("the room's disco#info", |e| e.get_attr("id") == Some("d1")).await;
    assert!(info.to_xml().contains(MAM), "{}", info.to_xml());
}
