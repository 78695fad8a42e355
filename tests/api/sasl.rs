//! SASL on the XMPP door: SCRAM-SHA-256 and SCRAM-SHA-1 with the stored credentials (the
//! client checks the server's signature too), every refusal, three failures closing the
//! stream, and an account made before credentials were kept getting them at its next login.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::json;
use switchboard_actors::model::scram::ScramMechanism;
use switchboard_actors::scram::client_proof;

use switchboard::xmpp::xml::Element;

use crate::helpers::*;
use crate::xmpp::{Frame, Xmpp};

const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";

/// Either XMPP test client, for what both do the same way.
pub trait XmlPeer {
    async fn send(&mut self, xml: &str);
    async fn next(&mut self) -> Element;
}

impl XmlPeer for Xmpp {
    async fn send(&mut self, xml: &str) {
        Xmpp::send(self, xml).await
    }

    async fn next(&mut self) -> Element {
        Xmpp::next(self).await
    }
}

/// A SCRAM exchange from the client's side; `Ok` with the stream ready to reopen.
async fn scram(x: &mut Xmpp, mechanism: ScramMechanism, user: &str, password: &str) -> Result<(), String> {
    scram_bound(x, mechanism.name(), mechanism, user, password, "n,,", &[]).await
}

/// A SCRAM exchange with the mechanism named `name` (a `-PLUS` one too), the gs2 header
/// `gs2` and the channel binding data `binding`.
pub async fn scram_bound(
    x: &mut impl XmlPeer,
    name: &str,
    mechanism: ScramMechanism,
    user: &str,
    password: &str,
    gs2: &str,
    binding: &[u8],
) -> Result<(), String> {
    let client_first_bare = format!("n={user},r=clientnonce123");
    let first = STANDARD.encode(format!("{gs2}{client_first_bare}"));
    x.send(&format!("<auth xmlns='{SASL}' mechanism='{name}'>{first}</auth>")).await;
    let challenge = x.next().await;
    if challenge.name != "challenge" {
        return Err(challenge.to_xml());
    }
    let server_first = String::from_utf8(STANDARD.decode(challenge.text_content().trim()).unwrap()).unwrap();
    let mut fields = server_first.split(',');
    let nonce = fields.next().unwrap().strip_prefix("r=").unwrap().to_owned();
    assert!(nonce.starts_with("clientnonce123") && nonce.len() > 20, "{server_first}");
    let salt = STANDARD.decode(fields.next().unwrap().strip_prefix("s=").unwrap()).unwrap();
    let iterations: u32 = fields.next().unwrap().strip_prefix("i=").unwrap().parse().unwrap();
    let mut channel = gs2.as_bytes().to_vec();
    channel.extend_from_slice(binding);
    let without_proof = format!("c={},r={nonce}", STANDARD.encode(channel));
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    let (proof, expected) = client_proof((&salt, iterations), mechanism, password, auth_message.as_bytes());
    let last = STANDARD.encode(format!("{without_proof},p={}", STANDARD.encode(proof)));
    x.send(&format!("<response xmlns='{SASL}'>{last}</response>")).await;
    let answer = x.next().await;
    if answer.name != "success" {
        return Err(answer.to_xml());
    }
    let server_final = String::from_utf8(STANDARD.decode(answer.text_content().trim()).unwrap()).unwrap();
    assert_eq!(server_final, format!("v={}", STANDARD.encode(expected)), "the server proves it knows the password");
    Ok(())
}

async fn opened(app: &TestApp) -> Xmpp {
    let mut x = Xmpp::connect(app).await;
    x.open().await;
    let features = x.next().await.to_xml();
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"] {
        assert!(features.contains(&format!(">{mechanism}<")), "{features}");
    }
    x
}

#[actix_web::test]
async fn scram_sha_256_and_sha_1_sign_in_with_stored_credentials_and_refuse_wrong_passwords() {
    let app = spawn_app().await;
    app.create_user("ann").await;
    for mechanism in ScramMechanism::ALL {
        let mut x = opened(&app).await;
        scram(&mut x, mechanism, "ann", "pw-ann").await.unwrap_or_else(|e| panic!("{mechanism:?}: {e}"));
        x.open().await;
        let features = x.next().await;
        assert!(features.to_xml().contains("urn:ietf:params:xml:ns:xmpp-bind"), "{}", features.to_xml());
        x.send("<iq xmlns='jabber:client' type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>").await;
        let bound = x.next().await;
        assert_eq!(bound.get_attr("type"), Some("result"), "{}", bound.to_xml());
    }
    // A changed password: the old one fails, the new one works.
    let r = app.put_json("/restapi/v1/users/ann", app.admin(), &json!({"password": "a-new-secret"})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let mut x = opened(&app).await;
    let refused = scram(&mut x, ScramMechanism::Sha256, "ann", "pw-ann").await.unwrap_err();
    assert!(refused.contains("not-authorized"), "{refused}");
    scram(&mut x, ScramMechanism::Sha256, "ann", "a-new-secret").await.unwrap();

    // An unknown user gets a challenge like anyone, and fails at the proof.
    let mut x = opened(&app).await;
    let refused = scram(&mut x, ScramMechanism::Sha1, "nobody", "x").await.unwrap_err();
    assert!(refused.contains("not-authorized"), "{refused}");
    // Three failures close the stream.
    scram(&mut x, ScramMechanism::Sha1, "ann", "wrong").await.unwrap_err();
    scram(&mut x, ScramMechanism::Sha256, "ann", "wrong").await.unwrap_err();
    let mut said = String::new();
    loop {
        match x.next_within(Duration::from_secs(3)).await {
            Some(Frame::Stanza(e)) => said.push_str(&e.to_xml()),
            Some(Frame::Closed) => break,
            None => panic!("the stream stayed open after three failures: {said}"),
        }
    }
    assert!(said.contains("too many failed authentication attempts"), "{said}");

    // Malformed exchanges are named.
    let mut x = opened(&app).await;
    let bad = STANDARD.encode("p=tls-unique,,n=ann,r=x");
    x.send(&format!("<auth xmlns='{SASL}' mechanism='SCRAM-SHA-256'>{bad}</auth>")).await;
    let failure = x.next().await.to_xml();
    assert!(failure.contains("malformed-request") && failure.contains("channel binding"), "{failure}");
    x.send(&format!("<auth xmlns='{SASL}' mechanism='DIGEST-MD5'>x</auth>")).await;
    assert!(x.next().await.to_xml().contains("invalid-mechanism"));
}

#[actix_web::test]
async fn an_account_without_credentials_gets_them_at_its_next_password_login() {
    let app = spawn_app().await;
    app.create_user("old").await;
    let (dir, config) = app.stop().await;
    // As a database from before credentials were kept.
    let db = rusqlite::Connection::open(dir.path().join(&config.store.file)).unwrap();
    db.execute("UPDATE users SET scram = '' WHERE username = 'old'", []).unwrap();
    drop(db);
    let app = start(dir, config).await;
    let mut x = opened(&app).await;
    let refused = scram(&mut x, ScramMechanism::Sha256, "old", "pw-old").await.unwrap_err();
    assert!(refused.contains("not-authorized"), "{refused}");
    // A PLAIN (or REST) login with the password derives them.
    assert_eq!(app.get("/restapi/v1/chat/users?search=old", ("old", "pw-old")).await.status, 200);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let mut x = opened(&app).await;
        match scram(&mut x, ScramMechanism::Sha256, "old", "pw-old").await {
            Ok(()) => break,
            Err(e) if std::time::Instant::now() > deadline => panic!("no credentials after a login: {e}"),
            Err(_) => actix_rt::time::sleep(Duration::from_millis(50)).await,
        }
    }
}
