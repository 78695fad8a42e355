// Switchboard's browser side, shared by the web client, the agent console and the visitor
// page: REST calls with a bearer token, and the JSON websocket (/ws) with its commands.
// Plain ES module, no build step; the server compiles it into its binary.

/** A REST call; resolves to the parsed JSON (or text), rejects with the server's message. */
export async function api(method, path, { token, body, base = '' } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  let payload;
  if (body !== undefined) {
    headers['Content-Type'] = typeof body === 'string' ? 'text/plain' : 'application/json';
    payload = typeof body === 'string' ? body : JSON.stringify(body);
  }
  const response = await fetch(base + path, { method, headers, body: payload });
  const text = await response.text();
  let parsed = text;
  try { parsed = text ? JSON.parse(text) : null; } catch { /* plain text */ }
  if (!response.ok) {
    const message = parsed && parsed.message ? parsed.message : `${response.status} ${text}`;
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return parsed;
}

/**
 * The JSON websocket: events go to `onEvent(event)`, commands (`send(op, fields)`) resolve
 * with the server's ack or reply and reject with its error frame. Reconnects after a drop,
 * with a growing delay; `onState('connected'|'connecting'|'closed')` tells.
 */
export class Live {
  constructor(url, { onEvent, onState } = {}) {
    this.url = url;
    this.onEvent = onEvent || (() => {});
    this.onState = onState || (() => {});
    this.waiting = new Map();
    this.next = 1;
    this.delay = 500;
    this.stopped = false;
    this.open();
  }

  open() {
    this.onState('connecting');
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.onopen = () => { this.delay = 500; this.onState('connected'); };
    socket.onmessage = (frame) => {
      let value;
      try { value = JSON.parse(frame.data); } catch { return; }
      const pending = value.id !== undefined && !value.event ? this.waiting.get(value.id) : undefined;
      if (pending) {
        this.waiting.delete(value.id);
        if (value.type === 'error') pending.reject(new Error(value.message || 'refused'));
        else pending.resolve(value);
        return;
      }
      this.onEvent(value);
    };
    socket.onclose = () => {
      for (const pending of this.waiting.values()) pending.reject(new Error('disconnected'));
      this.waiting.clear();
      if (this.stopped) { this.onState('closed'); return; }
      this.onState('connecting');
      setTimeout(() => this.open(), this.delay);
      this.delay = Math.min(this.delay * 2, 15000);
    };
  }

  send(op, fields = {}, { wait = true } = {}) {
    const id = `c${this.next++}`;
    const frame = JSON.stringify({ op, id, ...fields });
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) {
      return Promise.reject(new Error('not connected'));
    }
    this.socket.send(frame);
    if (!wait) return Promise.resolve(null);
    return new Promise((resolve, reject) => this.waiting.set(id, { resolve, reject }));
  }

  close() {
    this.stopped = true;
    if (this.socket) this.socket.close();
  }
}

/** The websocket URL of `path` on the page's own server (or `base`). */
export function wsUrl(path, base = location.origin) {
  return base.replace(/^http/, 'ws') + path;
}

/** `user@domain/resource` → `user@domain`. */
export function bare(jid) {
  return String(jid || '').split('/')[0];
}

/** A DOM element: `el('div', {class: 'x', onclick}, 'text', child…)`. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'class') node.className = value;
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** A stamp as the time of day (or the date, when not today). */
export function when(stamp) {
  const date = new Date(stamp);
  if (Number.isNaN(date.getTime())) return '';
  const today = new Date().toDateString() === date.toDateString();
  return today ? date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : date.toLocaleString();
}
