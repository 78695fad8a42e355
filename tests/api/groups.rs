//! User groups, shared rosters and vCards through the admin API as the REST API plugin's
//! clients call it (both prefixes, Basic and the shared secret), and what they do on the
//! live doors: shared groups in SSE and XMPP contacts, vCards answered to `vcard-temp` IQs.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;
use crate::xmpp::Xmpp;

const SECRET: &str = "groups-secret-8c1d";

/// How a call authenticates: the admin's Basic credentials, or the plugin's secret.
#[derive(Clone, Copy)]
enum As<'a> {
    Basic(&'a str, &'a str),
    Secret(&'a str),
    Nobody,
}

async fn call(app: &TestApp, method: &str, path: &str, who: As<'_>, body: Option<&Value>) -> Reply {
    let url = app.url(path);
    let request = match method {
        "GET" => app.client.get(url),
        "POST" => app.client.post(url),
        "PUT" => app.client.put(url),
        "DELETE" => app.client.delete(url),
        other => panic!("method {other}"),
    };
    let request = match who {
        As::Basic(user, password) => request.basic_auth(user, password),
        As::Secret(secret) => request.insert_header(("authorization", secret.to_owned())),
        As::Nobody => request,
    };
    match body {
        Some(body) => reply(request.send_json(body).await).await,
        None => reply(request.send().await).await,
    }
}

fn exception(r: &Reply) -> String {
    r.json()["exception"].as_str().unwrap_or_default().to_owned()
}

#[actix_web::test]
async fn groups_are_kept_as_the_plugin_does_under_both_prefixes_and_both_auths() {
    let app = spawn_app_with(|c| c.admin.api_secret = SECRET.into()).await;
    for name in ["ann", "bob", "cy"] {
        app.create_user(name).await;
    }
    let (admin, password) = app.admin();
    let (admin, password) = (admin.to_owned(), password.to_owned());
    let runs = [
        ("/restapi/v1", As::Basic(&admin, &password)),
        ("/plugins/restapi/v1", As::Secret(SECRET)),
        ("/plugins/restapi/v1", As::Basic(&admin, &password)),
        ("/restapi/v1", As::Secret(SECRET)),
    ];
    for (run, (prefix, who)) in runs.into_iter().enumerate() {
        let name = format!("team{run}");
        // The plugin's entity, with its `null`s.
        let entity = json!({"name": name, "description": null, "admins": null, "members": ["ann", "bob@localhost"], "shared": null});
        let r = call(&app, "POST", &format!("{prefix}/groups"), who, Some(&entity)).await;
        assert_eq!(r.status, 201, "{prefix}: {}", r.text());
        let again = call(&app, "POST", &format!("{prefix}/groups"), who, Some(&entity)).await;
        assert_eq!((again.status, exception(&again)), (409, "GroupAlreadyExistsException".into()));

        let r = call(&app, "GET", &format!("{prefix}/groups/{name}"), who, None).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            r.json(),
            json!({"name": name, "description": "", "shared": false, "admins": [], "members": ["ann@localhost", "bob@localhost"]})
        );
        let listed = call(&app, "GET", &format!("{prefix}/groups"), who, None).await.json();
        assert!(listed["groups"].as_array().unwrap().iter().any(|g| g["name"] == name.as_str()), "{listed}");

        // PUT replaces description, sharing and people; `{"admin": [...]}` is the older shape.
        let update = json!({"name": name, "description": "Our team", "shared": true, "admins": {"admin": ["cy"]}, "members": ["ann"]});
        let r = call(&app, "PUT", &format!("{prefix}/groups/{name}"), who, Some(&update)).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let r = call(&app, "GET", &format!("{prefix}/groups/{name}"), who, None).await.json();
        assert_eq!((r["admins"].clone(), r["members"].clone()), (json!(["cy@localhost"]), json!(["ann@localhost"])));
        assert_eq!((r["shared"].clone(), r["description"].clone()), (json!(true), json!("Our team")));

        // A user's groups.
        let r =
            call(&app, "POST", &format!("{prefix}/users/bob/groups"), who, Some(&json!({"groupname": [name]}))).await;
        assert_eq!(r.status, 201, "{}", r.text());
        let r = call(&app, "GET", &format!("{prefix}/users/bob/groups"), who, None).await;
        assert_eq!(r.json(), json!({"groupname": [name]}));
        let r = call(&app, "DELETE", &format!("{prefix}/users/bob/groups/{name}"), who, None).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let r = call(&app, "POST", &format!("{prefix}/users/bob/groups/{name}"), who, None).await;
        assert_eq!(r.status, 201, "{}", r.text());
        let r =
            call(&app, "DELETE", &format!("{prefix}/users/bob/groups"), who, Some(&json!({"groupname": [name]}))).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            call(&app, "GET", &format!("{prefix}/users/bob/groups"), who, None).await.json(),
            json!({"groupname": []})
        );

        // Refusals, with the plugin's exception names.
        let r = call(&app, "GET", &format!("{prefix}/groups/nope"), who, None).await;
        assert_eq!((r.status, exception(&r)), (404, "GroupNotFoundException".into()), "{}", r.text());
        let r = call(&app, "PUT", &format!("{prefix}/groups/nope"), who, Some(&json!({"name": "nope"}))).await;
        assert_eq!((r.status, exception(&r)), (404, "GroupNotFoundException".into()));
        let r = call(&app, "DELETE", &format!("{prefix}/groups/nope"), who, None).await;
        assert_eq!((r.status, exception(&r)), (404, "GroupNotFoundException".into()));
        let ghost = json!({"name": format!("{name}x"), "members": ["ghost"]});
        let r = call(&app, "POST", &format!("{prefix}/groups"), who, Some(&ghost)).await;
        assert_eq!((r.status, exception(&r)), (404, "UserNotFoundException".into()), "{}", r.text());
        let r = call(&app, "PUT", &format!("{prefix}/groups/{name}"), who, Some(&json!({"name": "other"}))).await;
        assert_eq!((r.status, exception(&r)), (400, "IllegalArgumentException".into()));
        let r = call(&app, "POST", &format!("{prefix}/groups"), who, Some(&json!({"description": "no name"}))).await;
        assert_eq!(r.status, 400);
        let r = call(&app, "POST", &format!("{prefix}/users/ghost/groups/{name}"), who, None).await;
        assert_eq!((r.status, exception(&r)), (404, "UserNotFoundException".into()));
        let r = call(&app, "POST", &format!("{prefix}/users/bob/groups/nope"), who, None).await;
        assert_eq!((r.status, exception(&r)), (404, "GroupNotFoundException".into()));
        let r = call(&app, "POST", &format!("{prefix}/users/bob/groups"), who, Some(&json!({"groupname": []}))).await;
        assert_eq!(r.status, 400);

        let r = call(&app, "DELETE", &format!("{prefix}/groups/{name}"), who, None).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(call(&app, "GET", &format!("{prefix}/groups/{name}"), who, None).await.status, 404);

        // Not the admin; a wrong secret; none at all.
        for (refused, status) in
            [(As::Basic("ann", "pw-ann"), 403), (As::Secret("groups-secret-8c1e"), 401), (As::Nobody, 401)]
        {
            assert_eq!(call(&app, "GET", &format!("{prefix}/groups"), refused, None).await.status, status);
            let r = call(&app, "POST", &format!("{prefix}/groups"), refused, Some(&json!({"name": "x"}))).await;
            assert_eq!(r.status, status);
        }
    }
    // Without a configured secret the header is refused.
    let plain = spawn_app().await;
    assert_eq!(call(&plain, "GET", "/plugins/restapi/v1/groups", As::Secret(SECRET), None).await.status, 401);
}

#[actix_web::test]
async fn a_shared_group_shows_in_contacts_and_presence_on_sse_and_xmpp() {
    let app = spawn_app().await;
    for name in ["ann", "bob", "cy"] {
        app.create_user(name).await;
    }
    let ann = app.login("ann").await;
    let mut ann_sse = app.sse("ann", &format!("?stream={ann}")).await;
    let mut bob = Xmpp::login(&app, "bob", "pw-bob").await;
    bob.send("<presence xmlns='jabber:client'/>").await;

    let group = json!({"name": "Crew", "shared": true, "members": ["ann", "bob"]});
    assert_eq!(app.post_json("/plugins/restapi/v1/groups", app.admin(), &group).await.status, 201);

    // Ann's SSE: a roster push for Bob, then his presence; her contact list has him, both ways.
    let push = next_of(&mut ann_sse, "chatapi.roster", "push").await;
    assert_eq!(push.data["item"]["jid"], "bob@localhost");
    assert_eq!(
        (push.data["item"]["subscription"].clone(), push.data["item"]["groups"].clone()),
        (json!("both"), json!(["Crew"]))
    );
    ann_sse.next_presence("available", "bob@localhost").await;
    let contacts = app.get(&format!("/restapi/v1/chat/{ann}/contacts"), ("ann", "pw-ann")).await.json();
    let listed = contacts.as_array().or_else(|| contacts["rosterItem"].as_array()).cloned().unwrap_or_default();
    let bob_item = listed.iter().find(|c| c["jid"] == "bob@localhost").unwrap_or_else(|| panic!("{contacts}"));
    assert_eq!((bob_item["subscriptionType"].clone(), bob_item["groups"].clone()), (json!(3), json!(["Crew"])));

    // Bob's XMPP client: a roster push for Ann and her presence; his roster has her.
    let push = bob
        .next_where("a roster push", |e| {
            e.name == "iq" && e.to_xml().contains("jabber:iq:roster") && e.to_xml().contains("ann@localhost")
        })
        .await;
    assert!(push.to_xml().contains("subscription=\"both\""), "{}", push.to_xml());
    assert!(push.to_xml().contains("<group>Crew</group>"), "{}", push.to_xml());
    bob.next_where("Ann's presence", |e| {
        e.name == "presence" && e.get_attr("from").is_some_and(|f| f.starts_with("ann@localhost"))
    })
    .await;
    bob.send("<iq xmlns='jabber:client' type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>").await;
    let roster = bob.next_where("the roster", |e| e.get_attr("id") == Some("r1")).await;
    assert!(roster.to_xml().contains("jid=\"ann@localhost\""), "{}", roster.to_xml());
    assert!(roster.to_xml().contains("subscription=\"both\""), "{}", roster.to_xml());

    // The share is the admin's: removing the contact says so.
    let r = app.delete(&format!("/restapi/v1/chat/{ann}/contacts/bob@localhost"), ("ann", "pw-ann")).await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.message().contains("shared group 'Crew'"), "{}", r.text());

    // A presence change crosses because of the share alone.
    bob.send("<presence xmlns='jabber:client'><show>away</show></presence>").await;
    let away = ann_sse.next_presence("available", "bob@localhost").await;
    assert_eq!(away.data["show"], "away", "{:?}", away.data);

    // Cy is not in the group and sees none of it.
    let cy = app.login("cy").await;
    let cy_contacts = app.get(&format!("/restapi/v1/chat/{cy}/contacts"), ("cy", "pw-cy")).await;
    assert!(!cy_contacts.text().contains("ann@localhost"), "{}", cy_contacts.text());

    // Bob leaves the group: both rosters lose the item and Ann sees him go.
    assert_eq!(app.delete("/restapi/v1/users/bob/groups/Crew", app.admin()).await.status, 200);
    let gone = next_of(&mut ann_sse, "chatapi.roster", "push").await;
    assert_eq!(gone.data["item"]["subscription"], "remove");
    ann_sse.next_presence("unavailable", "bob@localhost").await;
    bob.next_where("a removal push", |e| e.name == "iq" && e.to_xml().contains("subscription=\"remove\"")).await;
    let contacts = app.get(&format!("/restapi/v1/chat/{ann}/contacts"), ("ann", "pw-ann")).await;
    assert!(!contacts.text().contains("bob@localhost"), "{}", contacts.text());

    // A user who comes online later gets the share with the rest of its roster.
    assert_eq!(app.post_json("/restapi/v1/users/cy/groups/Crew", app.admin(), &json!({})).await.status, 201);
    let mut cy_x = Xmpp::login(&app, "cy", "pw-cy").await;
    cy_x.send("<iq xmlns='jabber:client' type='get' id='r2'><query xmlns='jabber:iq:roster'/></iq>").await;
    let roster = cy_x.next_where("the roster", |e| e.get_attr("id") == Some("r2")).await;
    assert!(roster.to_xml().contains("ann@localhost"), "{}", roster.to_xml());
    cy_x.send("<presence xmlns='jabber:client'/>").await;
    ann_sse.next_presence("available", "cy@localhost").await;
    ann_sse.assert_quiet_except(Duration::from_millis(200), &["chatapi.presence", "chatapi.roster"]).await;
}

#[actix_web::test]
async fn a_vcard_set_by_the_admin_is_what_an_xmpp_client_reads() {
    let app = spawn_app_with(|c| c.admin.api_secret = SECRET.into()).await;
    for name in ["ann", "bob"] {
        app.create_user(name).await;
    }
    let vcard = "<vCard xmlns='vcard-temp'><FN>Ann Example</FN><NICKNAME>annie</NICKNAME>\
                 <PHOTO><TYPE>image/png</TYPE><BINVAL>iVBORw0KGgo=</BINVAL></PHOTO></vCard>";
    for prefix in ["/restapi/v1", "/plugins/restapi/v1"] {
        let put = reply(
            app.client
                .put(app.url(&format!("{prefix}/users/ann/vcard")))
                .insert_header(("authorization", SECRET))
                .insert_header(("content-type", "application/xml"))
                .send_body(vcard)
                .await,
        )
        .await;
        assert_eq!(put.status, 200, "{}", put.text());
        let got = call(&app, "GET", &format!("{prefix}/users/ann/vcard"), As::Secret(SECRET), None).await;
        assert_eq!(got.status, 200);
        assert!(got.text().contains("<FN>Ann Example</FN>"), "{}", got.text());
    }

    // Bob's XMPP client asks for Ann's vCard and gets what the admin stored.
    let mut bob = Xmpp::login(&app, "bob", "pw-bob").await;
    bob.send("<iq xmlns='jabber:client' type='get' id='v1' to='ann@localhost'><vCard xmlns='vcard-temp'/></iq>").await;
    let card = bob.next_where("Ann's vCard", |e| e.get_attr("id") == Some("v1")).await;
    assert_eq!(card.get_attr("type"), Some("result"), "{}", card.to_xml());
    let xml = card.to_xml();
    assert!(xml.contains("<FN>Ann Example</FN>") && xml.contains("<BINVAL>iVBORw0KGgo=</BINVAL>"), "{xml}");
    // His own is empty until he sets it; he may set only his own.
    bob.send("<iq xmlns='jabber:client' type='get' id='v2'><vCard xmlns='vcard-temp'/></iq>").await;
    let own = bob.next_where("his vCard", |e| e.get_attr("id") == Some("v2")).await;
    assert!(own.to_xml().contains("<vCard xmlns=\"vcard-temp\"/>"), "{}", own.to_xml());
    bob.send("<iq xmlns='jabber:client' type='set' id='v3'><vCard xmlns='vcard-temp'><FN>Bob B</FN></vCard></iq>")
        .await;
    let set = bob.next_where("the set", |e| e.get_attr("id") == Some("v3")).await;
    assert_eq!(set.get_attr("type"), Some("result"), "{}", set.to_xml());
    let stored = app.get("/restapi/v1/users/bob/vcard", app.admin()).await;
    assert!(stored.text().contains("<FN>Bob B</FN>"), "{}", stored.text());
    bob.send("<iq xmlns='jabber:client' type='set' id='v4' to='ann@localhost'><vCard xmlns='vcard-temp'><FN>x</FN></vCard></iq>").await;
    let refused = bob.next_where("the refusal", |e| e.get_attr("id") == Some("v4")).await;
    assert_eq!(refused.get_attr("type"), Some("error"), "{}", refused.to_xml());
    assert!(refused.to_xml().contains("forbidden"), "{}", refused.to_xml());
    bob.send("<iq xmlns='jabber:client' type='get' id='v5' to='ghost@localhost'><vCard xmlns='vcard-temp'/></iq>")
        .await;
    let missing = bob.next_where("the refusal", |e| e.get_attr("id") == Some("v5")).await;
    assert!(missing.to_xml().contains("item-not-found"), "{}", missing.to_xml());

    // The photo is the avatar, for any signed-in user.
    let avatar =
        reply(app.client.get(app.url("/restapi/v1/avatars/ann")).basic_auth("bob", "pw-bob").send().await).await;
    assert_eq!(avatar.status, 200);
    assert_eq!(avatar.content_type.as_deref(), Some("image/png"));
    assert_eq!(avatar.body.as_ref(), &[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]);
    let none = reply(app.client.get(app.url("/restapi/v1/avatars/bob")).basic_auth("bob", "pw-bob").send().await).await;
    assert_eq!(none.status, 404, "a vCard without a photo is no avatar");
    let anonymous = reply(app.client.get(app.url("/restapi/v1/avatars/ann")).send().await).await;
    assert_eq!(anonymous.status, 401);

    // Refusals and removal.
    let bad = reply(
        app.client
            .put(app.url("/restapi/v1/users/ann/vcard"))
            .basic_auth("admin", app.admin().1)
            .send_body("<vcard>not one</vcard>")
            .await,
    )
    .await;
    assert_eq!((bad.status, exception(&bad)), (400, "IllegalArgumentException".into()), "{}", bad.text());
    assert_eq!(app.get("/restapi/v1/users/ghost/vcard", app.admin()).await.status, 404);
    assert_eq!(app.get("/restapi/v1/users/ann/vcard", ("bob", "pw-bob")).await.status, 403);
    assert_eq!(app.delete("/plugins/restapi/v1/users/ann/vcard", app.admin()).await.status, 200);
    assert_eq!(app.get("/restapi/v1/users/ann/vcard", app.admin()).await.status, 204);
    assert_eq!(app.delete("/restapi/v1/users/ann/vcard", app.admin()).await.status, 404);
}
