// The embeddable chat widget (ImbaChat's, `specs/vendor_apis.md` §3.5), served as
// /imbachat/v1/{site}/widget with the site's id set above this line. A page loads it with a
// <script> tag and calls window.ImbaChat.load({user_id, token}) (the site user token; `user_key`
// is taken too); it then shows a floating chat panel talking to this server over /ws.
// JS API: imbaChat.openDialog(id), imbaApi.openDialog(id, 0, jwt), openChat(), closeChat(),
// addToRoom({pipe, title}), on('imbaChat.loaded', cb). Self-contained: no module, no CDN.
(function () {
  'use strict';
  var SITE = window.__switchboardSite;
  var script = document.currentScript;
  var BASE = script ? new URL(script.src, location.href).origin : location.origin;
  var listeners = {};
  var session = null; // { token, username, jid, stream }
  var socket = null;
  var waiting = {};
  var next = 1;
  var dialogs = {}; // peer jid → { name, messages: [] }
  var rooms = {}; // room jid → { title, messages: [] }
  var current = null; // { kind: 'user'|'room', jid }
  var ui = null;

  function emit(name, value) {
    (listeners[name] || []).forEach(function (cb) { try { cb(value); } catch (e) { console.error(e); } });
  }

  function call(method, path, body) {
    var headers = {};
    if (session && session.token) headers.Authorization = 'Bearer ' + session.token;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    return fetch(BASE + path, { method: method, headers: headers, body: body === undefined ? undefined : JSON.stringify(body) })
      .then(function (r) {
        return r.text().then(function (text) {
          var value = text;
          try { value = text ? JSON.parse(text) : null; } catch (e) { /* text */ }
          if (!r.ok) throw new Error((value && value.message) || ('HTTP ' + r.status));
          return value;
        });
      });
  }

  function claims(jwt) {
    try {
      var part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      return JSON.parse(atob(part + '==='.slice((part.length + 3) % 4)));
    } catch (e) { return null; }
  }

  function bare(jid) { return String(jid || '').split('/')[0]; }

  function node(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined) n.textContent = text;
    return n;
  }

  var STYLE = [
    ':host{all:initial;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330}',
    '.launcher{display:flex;align-items:center;justify-content:center;position:fixed;bottom:18px;width:56px;height:56px;border-radius:50%;border:0;background:#2457c5;color:#fff;font-size:24px;cursor:pointer;box-shadow:0 4px 14px #0003;z-index:2147483000}',
    '.panel{position:fixed;bottom:86px;width:min(360px,calc(100vw - 24px));height:min(480px,calc(100vh - 110px));background:#fff;border:1px solid #d8dde6;border-radius:12px;box-shadow:0 8px 30px #0003;display:flex;flex-direction:column;overflow:hidden;z-index:2147483000}',
    '.right{right:18px}.left{left:18px}',
    '.head{display:flex;align-items:center;gap:8px;padding:10px;background:#2457c5;color:#fff}',
    '.head img{width:28px;height:28px;border-radius:50%;object-fit:cover}',
    '.head .title{flex:1;font-weight:600}.head button{background:none;border:0;color:#fff;font-size:18px;cursor:pointer}',
    '.state{font-size:11px;opacity:.85}',
    '.list{list-style:none;margin:0;padding:6px;overflow-y:auto;flex:1;display:flex;flex-direction:column;gap:6px}',
    '.list li{max-width:80%;padding:6px 9px;border-radius:10px;background:#f1f3f7}',
    '.list li.mine{align-self:flex-end;background:#e3ecff}',
    '.list .from{display:block;font-size:11px;color:#667085}',
    '.dialogs button{display:block;width:100%;text-align:left;border:0;border-bottom:1px solid #eef0f4;background:#fff;padding:8px;cursor:pointer}',
    '.compose{display:flex;gap:6px;padding:8px;border-top:1px solid #d8dde6}',
    '.compose input{flex:1;border:1px solid #d8dde6;border-radius:6px;padding:6px}',
    '.compose button{background:#2457c5;color:#fff;border:0;border-radius:6px;padding:6px 12px;cursor:pointer}',
    '.note{padding:16px;color:#667085}',
    '[hidden]{display:none!important}',
    '.dark .panel{background:#1f2430;color:#e8eaf0;border-color:#384050}.dark .list li{background:#2b3140}.dark .list li.mine{background:#2d3d66}',
    '.dark .dialogs button{background:#1f2430;color:#e8eaf0;border-color:#384050}'
  ].join('');

  function buildUi(options) {
    if (ui) return ui;
    var host = document.createElement('div');
    host.id = 'switchboard-widget';
    var root = host.attachShadow({ mode: 'open' });
    var side = options.position === 'left' ? 'left' : 'right';
    var wrap = node('div', options.theme === 'dark' ? 'dark' : '');
    var style = node('style');
    style.textContent = STYLE;
    var launcher = node('button', 'launcher ' + side);
    launcher.innerHTML = '<svg viewBox="0 0 24 24" width="26" height="26" aria-hidden="true"><path fill="currentColor" ' +
      'd="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"/></svg>';
    launcher.setAttribute('aria-label', 'Chat');
    var panel = node('section', 'panel ' + side);
    panel.hidden = true;
    panel.setAttribute('aria-label', 'Chat');
    var head = node('header', 'head');
    var avatar = node('img');
    avatar.alt = '';
    avatar.hidden = true;
    var title = node('span', 'title', 'Chat');
    var state = node('span', 'state', 'connecting');
    var back = node('button', '', '\u2190');
    back.setAttribute('aria-label', 'All dialogs');
    var close = node('button', '', '\u00D7');
    close.setAttribute('aria-label', 'Close chat');
    head.append(back, avatar, title, state, close);
    var list = node('ol', 'list');
    list.setAttribute('aria-live', 'polite');
    var dialogList = node('div', 'dialogs');
    var form = node('form', 'compose');
    var input = node('input');
    input.placeholder = 'Write a message';
    input.setAttribute('aria-label', 'Message');
    var sendButton = node('button', '', 'Send');
    sendButton.type = 'submit';
    form.append(input, sendButton);
    panel.append(head, dialogList, list, form);
    wrap.append(style, launcher, panel);
    root.append(wrap);
    document.body.append(host);
    launcher.addEventListener('click', function () { panel.hidden ? api.openChat() : api.closeChat(); });
    close.addEventListener('click', function () { api.closeChat(); });
    back.addEventListener('click', function () { current = null; render(); });
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      var text = input.value;
      if (!text.trim() || !current) return;
      input.value = '';
      sendText(text).catch(function (err) { note(err.message); });
    });
    ui = { host: host, root: root, panel: panel, list: list, dialogs: dialogList, title: title, state: state, avatar: avatar, form: form, input: input };
    return ui;
  }

  function note(text) {
    if (!ui) return;
    var li = node('li', 'note', text);
    ui.list.append(li);
  }

  function render() {
    if (!ui) return;
    ui.list.replaceChildren();
    ui.dialogs.replaceChildren();
    if (!session) {
      ui.title.textContent = 'Chat';
      ui.form.hidden = true;
      ui.list.append(node('li', 'note', 'Sign in on this site to chat.'));
      return;
    }
    if (!current) {
      ui.title.textContent = 'Dialogs';
      ui.avatar.hidden = true;
      ui.form.hidden = true;
      Object.keys(dialogs).forEach(function (jid) {
        var b = node('button', '', dialogs[jid].name || jid);
        b.addEventListener('click', function () { showDialog(jid); });
        ui.dialogs.append(b);
      });
      Object.keys(rooms).forEach(function (jid) {
        var b = node('button', '', '# ' + (rooms[jid].title || jid));
        b.addEventListener('click', function () { current = { kind: 'room', jid: jid }; render(); });
        ui.dialogs.append(b);
      });
      if (!ui.dialogs.children.length) ui.list.append(node('li', 'note', 'No dialogs yet.'));
      return;
    }
    var thread = current.kind === 'user' ? dialogs[current.jid] : rooms[current.jid];
    ui.title.textContent = thread.name || thread.title || current.jid;
    ui.avatar.hidden = !thread.avatar;
    if (thread.avatar) ui.avatar.src = thread.avatar;
    ui.form.hidden = false;
    thread.messages.forEach(function (m) {
      var li = node('li', m.mine ? 'mine' : 'theirs');
      li.append(node('span', 'from', m.mine ? 'me' : (m.name || m.from)), document.createTextNode(m.body));
      ui.list.append(li);
    });
    ui.list.scrollTop = ui.list.scrollHeight;
  }

  function command(op, fields) {
    return new Promise(function (resolve, reject) {
      if (!socket || socket.readyState !== 1) return reject(new Error('not connected'));
      var id = 'w' + (next++);
      waiting[id] = { resolve: resolve, reject: reject };
      fields.op = op;
      fields.id = id;
      socket.send(JSON.stringify(fields));
    });
  }

  function sendText(text) {
    if (current.kind === 'user') {
      var jid = current.jid;
      return command('message', { to: jid, body: text }).then(function (ack) {
        var d = dialogs[jid];
        if (!d.messages.some(function (m) { return m.id === ack.msgId; })) {
          d.messages.push({ id: ack.msgId, mine: true, body: text, stamp: ack.stamp });
        }
        render();
      });
    }
    return command('groupchat', { room: current.jid, body: text });
  }

  function onFrame(frame) {
    var v;
    try { v = JSON.parse(frame.data); } catch (e) { return; }
    if (v.id !== undefined && !v.event && waiting[v.id]) {
      var w = waiting[v.id];
      delete waiting[v.id];
      if (v.type === 'error') w.reject(new Error(v.message)); else w.resolve(v);
      return;
    }
    if (v.event === 'chatapi.chat' && v.body !== undefined && (v.type === 'chat' || v.type === 'normal')) {
      var from = bare(v.from);
      var mine = from === session.jid;
      var peer = mine ? bare(v.to) : from;
      var d = dialogs[peer] || (dialogs[peer] = { name: mine ? peer : (v.name || peer), messages: [] });
      if (!mine && v.name) d.name = v.name;
      if (!mine && v.avatar) d.avatar = v.avatar;
      if (!d.messages.some(function (m) { return m.id === v.id; })) {
        d.messages.push({ id: v.id, mine: mine, from: from, name: v.name, body: v.body, stamp: v.stamp });
      }
      emit('imbaChat.message', { from: from, body: v.body });
      render();
    } else if (v.event === 'chatapi.muc' && v.type === 'groupchat') {
      var room = rooms[bare(v.from)];
      if (!room) return;
      var nick = String(v.from).slice(bare(v.from).length + 1);
      if (!room.messages.some(function (m) { return m.id === v.id; })) {
        room.messages.push({ id: v.id, mine: nick === room.nick, from: nick, body: v.body });
      }
      render();
    }
  }

  function connect() {
    return new Promise(function (resolve, reject) {
      // The session token from the exchange; the page's origin must be one of the site's.
      var url = BASE.replace(/^http/, 'ws') + '/ws?stream=' + encodeURIComponent(session.stream) +
        '&token=' + encodeURIComponent(session.token);
      var opened = false;
      socket = new WebSocket(url);
      socket.onopen = function () {
        opened = true;
        if (ui) ui.state.textContent = 'connected';
        resolve();
      };
      socket.onmessage = onFrame;
      socket.onclose = function () {
        Object.keys(waiting).forEach(function (id) { waiting[id].reject(new Error('disconnected')); });
        waiting = {};
        if (ui) ui.state.textContent = 'connecting';
        if (!opened) { reject(new Error('the chat server refused the connection')); return; }
        setTimeout(function () { connect().catch(function () {}); }, 1500);
      };
    });
  }

  function showDialog(jid) {
    current = { kind: 'user', jid: jid };
    var d = dialogs[jid];
    if (d.loaded) { render(); return Promise.resolve(); }
    var q = '?to=' + encodeURIComponent(jid) + '&limit=50';
    return call('GET', '/restapi/v1/chat/' + encodeURIComponent(session.username) + '/messages' + q).then(function (answer) {
      var known = {};
      d.messages.forEach(function (m) { known[m.id] = true; });
      var page = (answer.messages || []).filter(function (m) { return !known[m.id]; }).map(function (m) {
        return { id: m.id, mine: bare(m.from) === session.jid, from: bare(m.from), name: m.name, body: m.body, stamp: m.stamp };
      });
      d.messages = page.concat(d.messages);
      d.loaded = true;
      render();
    });
  }

  var api = {
    openDialog: function (id) {
      if (!session) return Promise.reject(new Error('sign in first: ImbaChat.load({user_id, token})'));
      return call('GET', '/restapi/v1/sites/' + encodeURIComponent(SITE) + '/users?ids=' + encodeURIComponent(String(id))).then(function (answer) {
        var user = answer.users && answer.users[0];
        if (!user) throw new Error('no such user: ' + id);
        var d = dialogs[user.jid] || (dialogs[user.jid] = { messages: [] });
        d.name = user.name;
        d.avatar = user.avatar_url || null;
        api.openChat();
        return showDialog(user.jid).then(function () { return user; });
      });
    },
    addToRoom: function (room) {
      var name = String(room.pipe || room.title || '').toLowerCase().replace(/[^a-z0-9._-]/g, '-');
      var domain = session.jid.split('@')[1];
      var jid = name + '@conference.' + domain;
      return command('join', { room: jid, nick: session.username }).then(function (joined) {
        rooms[jid] = rooms[jid] || { title: room.title || name, messages: [] };
        rooms[jid].nick = joined.nick;
        current = { kind: 'room', jid: jid };
        api.openChat();
        render();
        return joined;
      });
    },
    openChat: function () { if (ui) { ui.panel.hidden = false; render(); } },
    closeChat: function () { if (ui) ui.panel.hidden = true; },
    on: function (name, cb) { (listeners[name] = listeners[name] || []).push(cb); },
    room_type: { conference: 'conference' }
  };

  window.imbaChat = api;
  window.imbaApi = api;
  window.ImbaChat = {
    load: function (options) {
      options = options || {};
      var started = performance.now();
      buildUi(options);
      var token = options.token || options.user_key;
      if (!token) {
        render();
        emit('imbaChat.loaded', { guest: true });
        return Promise.resolve({ guest: true });
      }
      var said = claims(token);
      if (options.user_id !== undefined && said && String(said.user_id) !== String(options.user_id)) {
        return Promise.reject(new Error('the token is for user ' + said.user_id + ', not ' + options.user_id));
      }
      return call('POST', '/restapi/v1/auth/site-token', { site: SITE, token: token }).then(function (answer) {
        session = { token: answer.token, username: answer.username, jid: answer.jid };
        return call('POST', '/restapi/v1/chat/' + encodeURIComponent(answer.username) + '/login');
      }).then(function (stream) {
        session.stream = stream;
        return connect();
      }).then(function () {
        window.ImbaChat.connectedMs = performance.now() - started;
        render();
        var loaded = { user: session.jid, connectedMs: window.ImbaChat.connectedMs };
        emit('imbaChat.loaded', loaded);
        return loaded;
      }).catch(function (err) {
        render();
        note(err.message);
        throw err;
      });
    }
  };
})();
