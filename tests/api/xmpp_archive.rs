//! XMPP over the shared archive and blocklist: XEP-0313 queries page through messages that
//! were sent over REST and `/ws`, and XEP-0191 blocking commands change the same blocklist
//! the REST API shows and every door enforces.

use serde_json::json;
use switchboard::xmpp::xml::Element;

use crate::helpers::*;
use crate::xmpp::Xmpp;

const MAM: &str = "urn:xmpp:mam:2";

/// One MAM query: the bodies it returned, in order, and its `<fin>`.
async fn mam(x: &mut Xmpp, id: &str, form: &str, rsm: &str) -> (Vec<String>, Element) {
    x.send(&format!(
        "<iq xmlns='jabber:client' type='set' id='{id}'><query xmlns='{MAM}' queryid='q-{id}'>\
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
        bodies.push(message.find("body", "jabber:client").unwrap().text_content());
    }
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
    assert_eq!(x.next().await.get_attr("type"), Some("result"));
    x.send("<iq xmlns='jabber:client' type='get' id='b2'><blocklist xmlns='urn:xmpp:blocking'/></iq>").await;
    let list = x.next().await.to_xml();
    assert!(list.contains("ann@localhost"), "{list}");
    let bob_stream = app.login("bob").await;
    let rest = app.get(&format!("/restapi/v1/chat/{bob_stream}/blocklist"), ("bob", "pw-bob")).await;
    assert_eq!(rest.json()["blocked"], json!(["ann@localhost"]));
    assert_ne!(app.send("ann", &stream, "bob", "blocked?").await.status, 200, "a blocked user cannot write");
    // Unblocking with no items unblocks everyone.
    x.send("<iq xmlns='jabber:client' type='set' id='b3'><unblock xmlns='urn:xmpp:blocking'/></iq>").await;
    assert_eq!(x.next().await.get_attr("type"), Some("result"));
    let rest = app.get(&format!("/restapi/v1/chat/{bob_stream}/blocklist"), ("bob", "pw-bob")).await;
    assert_eq!(rest.json()["blocked"], json!([]));
    x.send("<iq xmlns='jabber:client' type='set' id='b4'><block xmlns='urn:xmpp:blocking'/></iq>").await;
    assert!(x.next().await.to_xml().contains("bad-request"));
}
