// The visitor page of a Fastpath workgroup (/ask/{workgroup}): ask a question, see the
// place in the queue, then chat with the agent who accepted. No account: the visitor token
// from POST /restapi/v1/ask proves the visitor, kept in this tab's sessionStorage so that a
// reload resumes.

import { api, Live, wsUrl, bare, el, when } from './common.js';

const $ = (id) => document.getElementById(id);
const workgroup = decodeURIComponent(location.pathname.split('/').filter(Boolean)[1] || '');
const key = `switchboard-visitor-${workgroup}`;
let visitor = null; // { userID, token, nickname }
let room = null;
let live = null;

$('title').textContent = `Ask ${workgroup}`;

function status(text) {
  $('status').hidden = false;
  $('status').textContent = text;
}

function call(method, path, body) {
  return api(method, path, { token: visitor.token, body });
}

async function ask(nickname, email, question) {
  const userID = `v-${crypto.getRandomValues(new Uint32Array(2)).join('')}`;
  const answer = await api('POST', '/restapi/v1/ask', {
    body: { workgroup, userID, nickname, emailAddress: email, question },
  });
  visitor = { userID, token: answer.token, nickname };
  sessionStorage.setItem(key, JSON.stringify(visitor));
  status(`You are number ${answer.position} in the queue.`);
  connect();
}

function connect() {
  $('ask-form').hidden = true;
  live = new Live(wsUrl(`/ws?token=${encodeURIComponent(visitor.token)}`), { onEvent, onState: (s) => { document.body.dataset.connection = s; } });
}

async function enter(mucRoom) {
  room = mucRoom;
  await call('POST', `/restapi/v1/ask/${encodeURIComponent(visitor.userID)}`);
  $('messages').hidden = false;
  $('composer').hidden = false;
  $('leave').hidden = false;
  $('text').focus();
}

function onEvent(event) {
  if (event.event === 'chatapi.ask') {
    if (event.type === 'update-queue') status(`You are number ${event.position} in the queue (about ${event.remaingTime} s).`);
    if (event.type === 'offer') {
      status(`${event.agent} is here to help you.`);
      enter(event.mucRoom).catch((e) => status(e.message));
    }
    if (event.type === 'depart-queue') status(`No one could take your question (${event.reason}).`);
    if (event.type === 'chat-ended') { status('The chat has ended.'); $('composer').hidden = true; }
  }
  if (event.event === 'chatapi.muc' && event.type === 'groupchat' && room && bare(event.from) === bare(room)) {
    const nick = String(event.from).slice(bare(event.from).length + 1);
    if (document.querySelector(`#messages [data-id="${CSS.escape(String(event.id))}"]`)) return;
    $('messages').append(el('li', { class: nick === visitor.nickname ? 'mine' : 'theirs', 'data-id': event.id },
      el('span', { class: 'from' }, nick), el('span', { class: 'body' }, event.body), el('time', {}, when(event.stamp))));
    $('messages').scrollTop = $('messages').scrollHeight;
  }
}

$('ask-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  ask(String(f.get('nickname')), String(f.get('email')), String(f.get('question'))).catch((error) => {
    $('ask-error').textContent = error.message;
  });
});
$('composer').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = $('text').value;
  if (!text.trim()) return;
  $('text').value = '';
  call('PUT', `/restapi/v1/ask/${encodeURIComponent(visitor.userID)}`, text).catch((error) => status(error.message));
});
$('leave').addEventListener('click', async () => {
  try { await call('DELETE', `/restapi/v1/ask/${encodeURIComponent(visitor.userID)}`); } catch { /* over already */ }
  sessionStorage.removeItem(key);
  if (live) live.close();
  status('You left the chat.');
  $('composer').hidden = true;
  $('leave').hidden = true;
});

const saved = sessionStorage.getItem(key);
if (saved) {
  visitor = JSON.parse(saved);
  call('GET', `/restapi/v1/ask/${encodeURIComponent(visitor.userID)}`).then((s) => {
    connect();
    if (s.room) enter(s.room).catch(() => {});
    else if (s.inQueue) status(`You are number ${s.queuePosition} in the queue.`);
  }).catch(() => sessionStorage.removeItem(key));
}
