// The web client: sign in with a user name and password (only the token is kept, in this
// tab's sessionStorage), contacts with presence and requests, 1:1 chat with history that pages
// back, unread counts and typing, rooms (directory, join, post, occupants, invitations), your
// own presence, and the agent console for Fastpath members.

import { api, Live, wsUrl, bare, el, when } from './common.js';

const $ = (id) => document.getElementById(id);
const PAGE = 30;

const state = {
  me: null, // { username, jid, token, stream }
  live: null,
  contacts: new Map(), // bare jid → { jid, name, subscription, show, status }
  unread: new Map(),
  chats: new Map(), // bare jid → { messages: [], oldest, complete, loaded }
  rooms: new Map(), // room jid → { nick, messages: [], occupants: Map }
  offers: new Map(),
  current: null, // { kind: 'user'|'room', jid }
  typingTimer: null,
  composing: false,
};

function saveSession() {
  const { username, jid, token } = state.me;
  sessionStorage.setItem('switchboard', JSON.stringify({ username, jid, token }));
}

async function signIn(username, password) {
  const answer = await api('POST', '/restapi/v1/auth/token', { body: { username, password } });
  state.me = { username: answer.username, jid: answer.jid, token: answer.token };
  saveSession();
  await start();
}

async function start() {
  const { username, token } = state.me;
  state.me.stream = await api('POST', `/restapi/v1/chat/${encodeURIComponent(username)}/login`, { token });
  $('signin').hidden = true;
  $('client').hidden = false;
  $('me').textContent = state.me.jid;
  state.live = new Live(wsUrl(`/ws?stream=${encodeURIComponent(state.me.stream)}&token=${encodeURIComponent(token)}`), {
    onEvent,
    onState: (s) => {
      $('connection').textContent = s;
      // Contacts are read once the socket is attached (and again after a reconnect), so no
      // presence falls between the list and the events.
      if (s === 'connected') loadContacts().then(() => { document.body.dataset.connection = s; }).catch(showError);
      else document.body.dataset.connection = s;
    },
  });
  await loadAgent();
}

function call(method, path, body) {
  return api(method, path, { token: state.me.token, body });
}

function streamPath(rest) {
  return `/restapi/v1/chat/${encodeURIComponent(state.me.stream)}${rest}`;
}

// ---- contacts and presence ---------------------------------------------------------------

async function loadContacts() {
  // Presence that arrives while the list is on its way is applied again on top of it.
  const arrived = [];
  state.arriving = arrived;
  let answer;
  try {
    answer = await call('GET', streamPath('/contacts'));
  } finally {
    if (state.arriving === arrived) state.arriving = null;
  }
  state.contacts.clear();
  for (const item of answer.rosterItem || []) {
    state.contacts.set(bare(item.jid), {
      jid: bare(item.jid), name: item.name || item.nickname, subscription: item.subscription,
      show: item.show, status: item.status, ask: item.ask,
    });
  }
  for (const event of arrived) onPresence(event);
  renderContacts();
}

function renderContacts() {
  const list = $('contacts');
  list.replaceChildren();
  for (const contact of [...state.contacts.values()].sort((a, b) => a.jid.localeCompare(b.jid))) {
    const unread = state.unread.get(contact.jid) || 0;
    const show = contact.show || 'offline';
    list.append(el('li', { 'data-jid': contact.jid, class: state.current && state.current.jid === contact.jid ? 'active' : '' },
      el('button', { type: 'button', class: 'contact', onclick: () => openChat(contact.jid) },
        el('span', { class: `dot ${show}`, title: show, 'aria-label': show }),
        el('span', { class: 'who' }, contact.name || contact.jid),
        el('span', { class: 'presence' }, show + (contact.status ? ` — ${contact.status}` : '')),
        contact.ask ? el('span', { class: 'note' }, 'asked') : null,
        unread ? el('span', { class: 'badge', 'aria-label': `${unread} unread` }, unread) : null),
      el('button', { type: 'button', class: 'remove', 'aria-label': `Remove ${contact.jid}`, onclick: () => removeContact(contact.jid) }, '×')));
  }
}

async function addContact(jid) {
  const full = jid.includes('@') ? jid : `${jid}@${state.me.jid.split('@')[1]}`;
  await call('POST', streamPath('/contacts'), { jid: full });
  await loadContacts();
}

async function removeContact(jid) {
  await call('DELETE', streamPath(`/contacts/${encodeURIComponent(jid)}`));
  await loadContacts();
}

function addRequest(jid) {
  if (document.querySelector(`#requests [data-jid="${CSS.escape(jid)}"]`)) return;
  $('requests').append(el('li', { 'data-jid': jid }, `${jid} wants to see your presence `,
    el('button', { type: 'button', onclick: async (e) => { e.target.closest('li').remove(); await addContact(jid); } }, 'Accept'),
    el('button', { type: 'button', onclick: (e) => e.target.closest('li').remove() }, 'Ignore')));
}

function setPresence() {
  // A presence change is answered only when refused (an error frame).
  state.live.send('presence', { show: $('my-show').value, status: $('my-status').value || null }, { wait: false }).catch(showError);
}

// ---- conversations -------------------------------------------------------------------------

function chatOf(jid) {
  if (!state.chats.has(jid)) state.chats.set(jid, { messages: [], oldest: null, complete: false, loaded: false });
  return state.chats.get(jid);
}

async function loadHistory(jid, before) {
  const chat = chatOf(jid);
  const query = new URLSearchParams({ to: jid, limit: String(PAGE) });
  if (before) query.set('before', before);
  const answer = await call('GET', `/restapi/v1/chat/${encodeURIComponent(state.me.username)}/messages?${query}`);
  const page = (answer.messages || []).map(fromHistory);
  const known = new Set(chat.messages.map((m) => m.id));
  chat.messages = [...page.filter((m) => !known.has(m.id)), ...chat.messages];
  if (page.length) chat.oldest = page[0].id;
  chat.complete = page.length < PAGE;
  chat.loaded = true;
}

function fromHistory(m) {
  return { id: m.id, mine: bare(m.from) === state.me.jid, from: bare(m.from), name: m.name, body: m.body, stamp: m.stamp };
}

async function openChat(jid) {
  state.current = { kind: 'user', jid };
  state.unread.delete(jid);
  document.body.dataset.view = 'chat';
  const contact = state.contacts.get(jid);
  $('chat-title').textContent = contact && contact.name ? `${contact.name} (${jid})` : jid;
  $('composer').hidden = false;
  $('room-actions').hidden = true;
  $('occupants').hidden = true;
  $('typing').textContent = '';
  const chat = chatOf(jid);
  if (!chat.loaded) await loadHistory(jid);
  renderContacts();
  renderMessages();
  $('text').focus();
}

function renderMessages() {
  const list = $('messages');
  list.replaceChildren();
  if (!state.current) return;
  const messages = state.current.kind === 'user' ? chatOf(state.current.jid).messages : state.rooms.get(state.current.jid).messages;
  for (const m of messages) {
    list.append(el('li', { class: m.mine ? 'mine' : 'theirs', 'data-id': m.id },
      el('span', { class: 'from' }, m.mine ? 'me' : (m.name || m.from)),
      el('span', { class: 'body' }, m.body),
      el('time', { datetime: m.stamp }, when(m.stamp))));
  }
  $('older').hidden = state.current.kind !== 'user' || chatOf(state.current.jid).complete;
  list.scrollTop = list.scrollHeight;
}

async function send(text) {
  if (!state.current || !text.trim()) return;
  const { kind, jid } = state.current;
  if (kind === 'user') {
    const ack = await state.live.send('message', { to: jid, body: text });
    const chat = chatOf(jid);
    if (!chat.messages.some((m) => m.id === ack.msgId)) {
      chat.messages.push({ id: ack.msgId, mine: true, from: state.me.jid, body: text, stamp: ack.stamp });
    }
    stopTyping();
  } else {
    await state.live.send('groupchat', { room: jid, body: text });
  }
  renderMessages();
}

function typing() {
  if (!state.current || state.current.kind !== 'user') return;
  if (!state.composing) {
    state.composing = true;
    state.live.send('chatstate', { to: state.current.jid, state: 'composing' }, { wait: false }).catch(() => {});
  }
  clearTimeout(state.typingTimer);
  state.typingTimer = setTimeout(() => {
    state.composing = false;
    if (state.current && state.current.kind === 'user') {
      state.live.send('chatstate', { to: state.current.jid, state: 'paused' }, { wait: false }).catch(() => {});
    }
  }, 3000);
}

function stopTyping() {
  clearTimeout(state.typingTimer);
  state.composing = false;
}

// ---- rooms -----------------------------------------------------------------------------------

function roomJid(name) {
  return name.includes('@') ? name : `${name}@conference.${state.me.jid.split('@')[1]}`;
}

async function joinRoom(name, nick) {
  const jid = roomJid(name);
  const joined = await state.live.send('join', { room: jid, nick: nick || state.me.username });
  if (!state.rooms.has(jid)) state.rooms.set(jid, { nick: joined.nick, messages: [], occupants: new Map() });
  state.rooms.get(jid).nick = joined.nick;
  renderRooms();
  openRoom(jid);
  const roomName = jid.split('@')[0];
  try {
    const answer = await call('GET', `/restapi/v1/chat/rooms/${encodeURIComponent(roomName)}/occupants`);
    for (const o of answer.occupants || []) state.rooms.get(jid).occupants.set(o.nick, o.name || o.nick);
    renderOccupants();
  } catch { /* the presence events fill it in */ }
}

function openRoom(jid) {
  state.current = { kind: 'room', jid };
  document.body.dataset.view = 'chat';
  $('chat-title').textContent = jid;
  $('composer').hidden = false;
  $('room-actions').hidden = false;
  $('occupants').hidden = false;
  $('typing').textContent = '';
  renderMessages();
  renderOccupants();
  $('text').focus();
}

function renderRooms() {
  $('my-rooms').replaceChildren(...[...state.rooms.keys()].map((jid) =>
    el('li', {}, el('button', { type: 'button', onclick: () => openRoom(jid) }, jid))));
}

function renderOccupants() {
  if (!state.current || state.current.kind !== 'room') return;
  const room = state.rooms.get(state.current.jid);
  $('occupants').replaceChildren(el('h3', {}, 'Occupants'),
    el('ul', {}, [...room.occupants.entries()].map(([nick, name]) => el('li', {}, name && name !== nick ? `${nick} (${name})` : nick))));
}

async function loadDirectory() {
  const answer = await call('GET', '/restapi/v1/chat/rooms');
  $('directory').replaceChildren(...(answer.chatRooms || []).map((r) =>
    el('li', {}, el('button', { type: 'button', onclick: () => joinRoom(r.jid || r.roomName) },
      `${r.naturalName || r.roomName} (${r.occupantCount || 0})`), r.description ? el('small', {}, ` ${r.description}`) : null)));
}

async function leaveRoom() {
  const jid = state.current.jid;
  await state.live.send('leave', { room: jid });
  state.rooms.delete(jid);
  state.current = null;
  renderRooms();
  $('messages').replaceChildren();
  $('composer').hidden = true;
  $('room-actions').hidden = true;
  $('occupants').hidden = true;
  $('chat-title').textContent = 'Pick someone to talk to';
}

async function invite(jid) {
  const room = state.current.jid.split('@')[0];
  const user = jid.includes('@') ? jid : `${jid}@${state.me.jid.split('@')[1]}`;
  await call('POST', streamPath(`/rooms/${encodeURIComponent(room)}/${encodeURIComponent(user)}`), { reason: 'Join us' });
}

// ---- the agent console -------------------------------------------------------------------------

async function loadAgent() {
  const answer = await call('GET', streamPath('/assists'));
  const workgroups = answer.workgroup || [];
  $('agent-tab').hidden = workgroups.length === 0;
  $('workgroups').replaceChildren(...workgroups.map((wg) => {
    const name = wg.split('@')[0];
    const toggle = el('button', { type: 'button', 'data-workgroup': name, 'aria-pressed': 'false' }, `Go online in ${name}`);
    toggle.addEventListener('click', async () => {
      const online = toggle.getAttribute('aria-pressed') === 'true';
      await call(online ? 'DELETE' : 'POST', streamPath(`/assists/${encodeURIComponent(name)}`));
      toggle.setAttribute('aria-pressed', String(!online));
      toggle.textContent = online ? `Go online in ${name}` : `Online in ${name} (go offline)`;
      await loadQueues();
    });
    return el('li', {}, toggle);
  }));
  if (workgroups.length) await loadQueues();
}

async function loadQueues() {
  const answer = await call('GET', streamPath('/assists/queues'));
  $('queues').replaceChildren(...(answer.queue || []).map((q) => {
    const users = (q.users && q.users.user) || [];
    return el('li', { class: 'queue' }, el('strong', {}, q.name), ` ${q.status}: ${users.length} waiting`,
      el('ul', {}, users.map((u) => el('li', {}, `${u.queuePosition}. ${u.userID}`))));
  }));
}

function addOffer(offer) {
  const deadline = Date.now() + (offer.timeout || 20) * 1000;
  const countdown = el('span', { class: 'countdown' });
  const item = el('li', { class: 'offer', 'data-offer': offer.id },
    el('strong', {}, (offer.metaData && offer.metaData.username) || offer.userID), ` asks ${offer.workgroup.split('@')[0]}: `,
    el('q', {}, (offer.metaData && offer.metaData.question) || ''), ' ', countdown, ' ',
    el('button', { type: 'button', class: 'accept', onclick: () => answerOffer(offer.id, true) }, 'Accept'),
    el('button', { type: 'button', class: 'reject', onclick: () => answerOffer(offer.id, false) }, 'Reject'));
  const tick = () => {
    const left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
    countdown.textContent = `${left} s`;
    if (left === 0) clearInterval(timer);
  };
  const timer = setInterval(tick, 250);
  tick();
  state.offers.set(offer.id, { item, timer });
  $('offers').append(item);
  document.querySelector('[data-tab="agent"]').click();
}

function dropOffer(id) {
  const offer = state.offers.get(id);
  if (!offer) return;
  clearInterval(offer.timer);
  offer.item.remove();
  state.offers.delete(id);
}

async function answerOffer(id, accept) {
  await call(accept ? 'POST' : 'DELETE', streamPath(`/offer/${encodeURIComponent(id)}`));
  dropOffer(id);
}

// ---- events ------------------------------------------------------------------------------------

function onEvent(event) {
  if (!event.event && event.type === 'error') return showError(new Error(event.message));
  switch (event.event) {
    case 'chatapi.chat': return onChat(event);
    case 'chatapi.presence': return onPresence(event);
    case 'chatapi.roster': return loadContacts().catch(showError);
    case 'chatapi.muc': return onRoom(event);
    case 'chatapi.assist':
      if (event.type === 'offerReceived') addOffer(event);
      if (event.type === 'offerRevoked') dropOffer(event.id);
      return undefined;
    case 'chatapi.ask':
      if (event.type === 'notify-queue') loadQueues().catch(() => {});
      return undefined;
    default: return undefined;
  }
}

function onChat(event) {
  const from = bare(event.from);
  const mine = from === state.me.jid;
  const peer = mine ? bare(event.to) : from;
  if (event.state && event.body === undefined) {
    if (!mine && state.current && state.current.jid === peer) {
      $('typing').textContent = event.state === 'composing' ? `${event.name || peer} is typing…` : '';
    }
    return;
  }
  if (!['chat', 'normal'].includes(event.type) || event.body === undefined) return;
  const chat = chatOf(peer);
  if (!chat.messages.some((m) => m.id === event.id)) {
    chat.messages.push({ id: event.id, mine, from, name: event.name, body: event.body, stamp: event.stamp });
  }
  if (state.current && state.current.kind === 'user' && state.current.jid === peer) {
    $('typing').textContent = '';
    renderMessages();
  } else if (!mine) {
    state.unread.set(peer, (state.unread.get(peer) || 0) + 1);
    if (!state.contacts.has(peer)) state.contacts.set(peer, { jid: peer, name: event.name, subscription: 'none', show: null });
    renderContacts();
  }
}

function onPresence(event) {
  if (event.room) {
    const room = state.rooms.get(bare(event.room));
    if (!room) return;
    if (event.type === 'unavailable') room.occupants.delete(event.nick);
    else room.occupants.set(event.nick, event.name || event.nick);
    renderOccupants();
    return;
  }
  const from = bare(event.from);
  if (event.type === 'subscribe') return addRequest(from);
  if (state.arriving) state.arriving.push(event);
  const contact = state.contacts.get(from);
  if (!contact) return undefined;
  if (event.type === 'available') { contact.show = event.show; contact.status = event.status; }
  if (event.type === 'unavailable') { contact.show = 'offline'; contact.status = null; }
  if (event.name) contact.name = event.name;
  renderContacts();
  return undefined;
}

function onRoom(event) {
  if (event.type === 'groupchat') {
    const jid = bare(event.from);
    const room = state.rooms.get(jid);
    if (!room) return;
    const nick = String(event.from).slice(jid.length + 1);
    if (!room.messages.some((m) => m.id === event.id)) {
      room.messages.push({ id: event.id, mine: nick === room.nick, from: nick, body: event.body, stamp: event.stamp });
    }
    if (state.current && state.current.jid === jid) renderMessages();
  } else if (event.type === 'invitationReceived') {
    if (event.workgroup) {
      // A visitor's chat that this agent accepted: join it at once.
      joinRoom(event.room, state.me.username).catch(showError);
      return;
    }
    $('invitations').append(el('li', {}, `${bare(event.inviter)} invites you to ${event.room} `,
      el('button', { type: 'button', onclick: (e) => { e.target.closest('li').remove(); joinRoom(event.room).catch(showError); } }, 'Join')));
    document.querySelector('[data-tab="rooms"]').click();
  } else if (event.type === 'destroyed') {
    state.rooms.delete(bare(event.room));
    renderRooms();
  }
}

function showError(error) {
  const note = el('p', { class: 'error', role: 'alert' }, error.message || String(error));
  $('messages').append(note);
  setTimeout(() => note.remove(), 6000);
}

// ---- wiring -------------------------------------------------------------------------------------

$('signin-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const form = new FormData(e.target);
  $('signin-error').textContent = '';
  try {
    await signIn(String(form.get('username')).trim(), String(form.get('password')));
  } catch (error) {
    $('signin-error').textContent = error.message;
  }
  e.target.password.value = '';
});
$('composer').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = $('text').value;
  $('text').value = '';
  send(text).catch(showError);
});
$('text').addEventListener('input', typing);
$('older').addEventListener('click', async () => {
  const jid = state.current.jid;
  await loadHistory(jid, chatOf(jid).oldest);
  renderMessages();
});
$('add-contact').addEventListener('submit', (e) => {
  e.preventDefault();
  addContact(e.target.jid.value.trim()).then(() => { e.target.jid.value = ''; }).catch(showError);
});
$('join-room').addEventListener('submit', (e) => {
  e.preventDefault();
  joinRoom(e.target.room.value.trim(), e.target.nick.value.trim()).catch(showError);
});
$('load-directory').addEventListener('click', () => loadDirectory().catch(showError));
$('leave-room').addEventListener('click', () => leaveRoom().catch(showError));
$('invite').addEventListener('click', () => invite($('invite-jid').value.trim()).then(() => { $('invite-jid').value = ''; }).catch(showError));
$('my-show').addEventListener('change', setPresence);
$('my-status').addEventListener('change', setPresence);
$('back').addEventListener('click', () => { document.body.dataset.view = 'list'; });
$('signout').addEventListener('click', async () => {
  try { await call('POST', streamPath('/logoff')); } catch { /* gone already */ }
  if (state.live) state.live.close();
  sessionStorage.removeItem('switchboard');
  location.reload();
});
for (const tab of document.querySelectorAll('[role="tab"]')) {
  tab.addEventListener('click', () => {
    for (const other of document.querySelectorAll('[role="tab"]')) other.setAttribute('aria-selected', String(other === tab));
    for (const section of document.querySelectorAll('.tab')) section.hidden = section.id !== `tab-${tab.dataset.tab}`;
  });
}

const saved = sessionStorage.getItem('switchboard');
if (saved) {
  state.me = JSON.parse(saved);
  start().catch(() => { sessionStorage.removeItem('switchboard'); location.reload(); });
}
