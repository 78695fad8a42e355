// Interop check: a real XMPP client library (@xmpp/client, not written by this project)
// against Switchboard's XMPP over WebSocket (RFC 7395, SERVICE ws://…) or over TCP with
// STARTTLS (RFC 6120, SERVICE xmpp://host:port; the server's certificate is trusted through
// NODE_EXTRA_CA_CERTS).
//
// Usage: node --experimental-websocket xmpp-client.mjs SERVICE DOMAIN USER PASSWORD PEER ROOM
// It connects, authenticates with SASL SCRAM-SHA-1 (the library's SCRAM), binds, fetches its
// roster, sends PEER a chat message, joins ROOM (XEP-0045) and speaks there, waits for a chat
// message from PEER whose body is "hello back", then fetches its archive of the chat with
// PEER and the room's archive (XEP-0313). Each step is printed as one JSON line on stdout for the Rust test that
// drives the other side; any failure exits non-zero.
import { client, xml } from "@xmpp/client";

const [service, domain, username, password, peer, room] = process.argv.slice(2);
const nick = "interop";
const say = (event, fields = {}) => console.log(JSON.stringify({ event, ...fields }));
const fail = (why) => {
  say("failed", { why: String(why) });
  process.exit(1);
};
setTimeout(() => fail("timed out"), 20_000).unref();

// SCRAM-SHA-1 by name, so that a server offering only PLAIN fails this check.
const credentials = async (authenticate, mechanisms) => {
  say("sasl", { offered: mechanisms });
  await authenticate({ username, password }, "SCRAM-SHA-1");
};
const xmpp = client({ service, domain, credentials, resource: "interop" });
xmpp.on("error", fail);

let joined;
const joinedRoom = new Promise((resolve) => (joined = resolve));
let answered;
const peerAnswered = new Promise((resolve) => (answered = resolve));

xmpp.on("stanza", (stanza) => {
  const from = stanza.attrs.from ?? "";
  if (stanza.is("presence") && from === `${room}/${nick}` && stanza.attrs.type !== "error") {
    joined(stanza);
  }
  if (stanza.is("message")) {
    const body = stanza.getChildText("body");
    if (body !== null) say("message", { from, type: stanza.attrs.type ?? "normal", body });
    if (stanza.attrs.type === "error") fail(`error stanza: ${stanza.toString()}`);
    if (body === "hello back" && from.startsWith(`${peer}/`)) answered(stanza);
  }
});

xmpp.on("online", async (address) => {
  try {
    say("online", { jid: address.toString() });
    const roster = await xmpp.iqCaller.get(xml("query", { xmlns: "jabber:iq:roster" }));
    say("roster", { items: roster.getChildren("item").map((item) => item.attrs.jid) });
    await xmpp.send(xml("presence"));
    await xmpp.send(xml("message", { to: peer, type: "chat" }, xml("body", {}, "hello from xmpp.js")));
    say("sent");
    await xmpp.send(
      xml("presence", { to: `${room}/${nick}` }, xml("x", { xmlns: "http://jabber.org/protocol/muc" })),
    );
    const self = await joinedRoom;
    const codes = self.getChild("x", "http://jabber.org/protocol/muc#user")?.getChildren("status") ?? [];
    say("joined", { self: codes.some((s) => s.attrs.code === "110") });
    await xmpp.send(xml("message", { to: room, type: "groupchat" }, xml("body", {}, "xmpp.js in the room")));
    await peerAnswered;
    say("answered");
    // XEP-0313: a query to `to` (the user's own archive when undefined), results collected
    // by their queryid until the IQ's <fin>.
    const field = (name, value, type) => xml("field", { var: name, type }, xml("value", {}, value));
    const archive = async (to, queryid, ...fields) => {
      const bodies = [];
      const collect = (stanza) => {
        const result = stanza.getChild("result", "urn:xmpp:mam:2");
        if (result?.attrs.queryid !== queryid) return;
        const message = result.getChild("forwarded", "urn:xmpp:forward:0")?.getChild("message");
        bodies.push(message?.getChildText("body"));
      };
      xmpp.on("stanza", collect);
      const form = xml("x", { xmlns: "jabber:x:data", type: "submit" }, field("FORM_TYPE", "urn:xmpp:mam:2", "hidden"), ...fields);
      const query = xml("query", { xmlns: "urn:xmpp:mam:2", queryid }, form);
      const fin = await xmpp.iqCaller.request(xml("iq", { type: "set", to }, query));
      xmpp.removeListener("stanza", collect);
      return { bodies, complete: fin.getChild("fin", "urn:xmpp:mam:2")?.attrs.complete ?? null };
    };
    say("archive", await archive(undefined, "interop-archive", field("with", peer)));
    say("room archive", await archive(room, "interop-room-archive"));
    await xmpp.stop();
    say("done");
    process.exit(0);
  } catch (e) {
    fail(e);
  }
});

xmpp.start().catch(fail);
