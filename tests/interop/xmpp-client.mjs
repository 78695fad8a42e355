// Interop check: a real XMPP client library (@xmpp/client, not written by this project)
// against Switchboard's XMPP over WebSocket (RFC 7395).
//
// Usage: node --experimental-websocket xmpp-client.mjs SERVICE DOMAIN USER PASSWORD PEER ROOM
// It connects, authenticates with SASL SCRAM-SHA-1 (the library's SCRAM), binds, fetches its roster, sends PEER a chat
// message, joins ROOM (XEP-0045) and speaks there, then waits for a chat message from PEER
// whose body is "hello back". Each step is printed as one JSON line on stdout for the Rust
// test that drives the other side; any failure exits non-zero.
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
    await xmpp.stop();
    say("done");
    process.exit(0);
  } catch (e) {
    fail(e);
  }
});

xmpp.start().catch(fail);
