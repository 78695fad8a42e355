// Browser scenarios in headless Chromium (Debian's package, driven by playwright-core), run by
// tests/api/browser.rs against a real server: `node e2e.mjs '<json>'` with
// {"scenario", "base", "shots", …}. Each step it passes prints one JSON line
// {"event": name, …}; a failure prints {"event":"failed","error"} and exits non-zero.

import { chromium } from 'playwright-core';

const input = JSON.parse(process.argv[2]);
const { base, shots } = input;
const say = (event, fields = {}) => console.log(JSON.stringify({ event, ...fields }));

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'],
});

/** A page in a context of its own (its own sessionStorage), phone-sized when asked. */
async function newPage(phone = false) {
  const context = await browser.newContext(phone ? { viewport: { width: 390, height: 780 } } : { viewport: { width: 1100, height: 720 } });
  const page = await context.newPage();
  page.setDefaultTimeout(10000);
  page.on('pageerror', (e) => say('pageerror', { error: String(e) }));
  // Nothing may be fetched from anywhere but loopback.
  await context.route(/^(?!http:\/\/127\.0\.0\.1|ws:\/\/127\.0\.0\.1|data:).*/, (route) => {
    say('blocked', { url: route.request().url() });
    return route.abort();
  });
  return page;
}

async function signIn(page, username, password) {
  await page.goto(`${base}/`);
  await page.fill('input[name="username"]', username);
  await page.fill('input[name="password"]', password);
  await page.press('input[name="password"]', 'Enter');
  await page.waitForSelector('body[data-connection="connected"]');
}

async function chat() {
  const [ann, bob] = [await newPage(), await newPage(true)];
  await signIn(ann, 'ann', input.passwords.ann);
  say('signed-in', { user: 'ann' });
  await signIn(bob, 'bob', input.passwords.bob);
  say('signed-in', { user: 'bob' });
  // Each sees the other come online.
  await ann.waitForSelector('#contacts [data-jid="bob@localhost"] .dot.available');
  await bob.waitForSelector('#contacts [data-jid="ann@localhost"] .dot.available');
  say('online', { seen: 'both' });
  // Presence: ann goes away, bob sees it.
  await ann.selectOption('#my-show', 'away');
  await ann.fill('#my-status', 'at lunch');
  await ann.press('#my-status', 'Enter');
  await bob.waitForSelector('#contacts [data-jid="ann@localhost"] .dot.away');
  await bob.waitForSelector('#contacts [data-jid="ann@localhost"] .presence:text("at lunch")');
  await ann.selectOption('#my-show', 'available');
  await bob.waitForSelector('#contacts [data-jid="ann@localhost"] .dot.available');
  say('presence', { seen: 'away' });
  // A contact request from cy, who is not in the page: ann accepts it and cy is a contact.
  const basic = 'Basic ' + Buffer.from(`cy:${input.passwords.cy}`).toString('base64');
  const stream = await (await fetch(`${base}/restapi/v1/chat/cy/login`, { method: 'POST', headers: { Authorization: basic } })).text();
  const asked = await fetch(`${base}/restapi/v1/chat/${stream}/contacts`, {
    method: 'POST', headers: { Authorization: basic, 'Content-Type': 'application/json' }, body: JSON.stringify({ jid: 'ann@localhost' }),
  });
  if (asked.status !== 201) throw new Error(`cy's request: ${asked.status} ${await asked.text()}`);
  await ann.click('#requests [data-jid="cy@localhost"] button:text("Accept")');
  await ann.waitForSelector('#contacts [data-jid="cy@localhost"] .dot');
  say('request', { accepted: 'cy@localhost' });
  // The password is not kept in the page.
  const kept = await ann.evaluate(() => JSON.stringify({ ...sessionStorage }) + JSON.stringify({ ...localStorage }));
  if (kept.includes(input.passwords.ann)) throw new Error('the password was stored in the page');

  // What waited for bob while he was away counts as unread; one more message adds one.
  const badge = '#contacts [data-jid="ann@localhost"] .badge';
  const offline = String(input.offline);
  await bob.waitForFunction(([sel, n]) => document.querySelector(sel)?.textContent === n, [badge, offline]);
  say('unread', { count: await bob.textContent(badge) });
  await ann.click('#contacts [data-jid="bob@localhost"] .contact');
  await ann.fill('#text', 'hello bob');
  await ann.press('#text', 'Enter');
  await bob.waitForFunction(([sel, n]) => document.querySelector(sel)?.textContent === n, [badge, String(input.offline + 1)]);
  await bob.click('#contacts [data-jid="ann@localhost"] .contact');
  await bob.waitForSelector('#messages li.theirs .body:text("hello bob")');
  say('received', { user: 'bob', body: 'hello bob' });
  // Typing shows on the other side.
  await bob.type('#text', 'hi ann');
  await ann.waitForSelector('#typing:text("is typing")');
  say('typing', { seen: 'ann' });
  await bob.press('#text', 'Enter');
  await ann.waitForSelector('#messages li.theirs .body:text("hi ann")');
  say('received', { user: 'ann', body: 'hi ann' });
  await ann.screenshot({ path: `${shots}/web-client.png` });
  await bob.screenshot({ path: `${shots}/web-client-phone.png` });

  // A reload keeps the session (a token, not the password) and the history comes back.
  await ann.reload();
  await ann.waitForSelector('body[data-connection="connected"]');
  await ann.click('#contacts [data-jid="bob@localhost"] .contact');
  await ann.waitForSelector('#messages li.mine .body:text("hello bob")');
  await ann.waitForSelector('#messages li.theirs .body:text("hi ann")');
  say('history', { after: 'reload' });
  // Older messages page back.
  const before = await ann.locator('#messages li').count();
  if (await ann.isVisible('#older')) {
    await ann.click('#older');
    await ann.waitForFunction((n) => document.querySelectorAll('#messages li').length > n, before);
  }
  say('paged', { before, after: await ann.locator('#messages li').count() });

  // Rooms: join from the directory's form, post, see the other occupant.
  await ann.click('[data-tab="rooms"]');
  await ann.fill('#join-room input[name="room"]', 'lounge');
  await ann.press('#join-room input[name="room"]', 'Enter');
  await ann.waitForSelector('#chat-title:text("lounge@conference.localhost")');
  await ann.fill('#invite-jid', 'bob');
  await ann.click('#invite');
  await bob.click('#back').catch(() => {});
  await bob.click('[data-tab="rooms"]');
  await bob.click('#invitations button:text("Join")');
  await bob.waitForSelector('#chat-title:text("lounge@conference.localhost")');
  await ann.waitForSelector('#occupants li:text("bob")');
  await bob.fill('#text', 'hello room');
  await bob.press('#text', 'Enter');
  await ann.waitForSelector('#messages li .body:text("hello room")');
  say('room', { posted: 'hello room' });
}

async function widget() {
  const page = await newPage();
  await page.goto(input.page);
  await page.waitForFunction(() => window.ImbaChat && window.ImbaChat.connectedMs !== undefined);
  const timing = await page.evaluate(() => ({
    loadToConnectedMs: window.ImbaChat.connectedMs,
    navigationToConnectedMs: performance.now(),
    loaded: window.loadedEvent || null,
  }));
  say('connected', timing);
  const user = await page.evaluate(() => window.imbaChat.openDialog(2));
  say('dialog', { name: user.name, jid: user.jid });
  const title = page.locator('#switchboard-widget .title');
  await title.filter({ hasText: 'Mary' }).waitFor();
  say('titled', { title: await title.textContent() });
  await page.fill('#switchboard-widget input', input.message);
  await page.press('#switchboard-widget input', 'Enter');
  await page.locator('#switchboard-widget li.mine', { hasText: input.message }).waitFor();
  say('sent', { body: input.message });
  // An answer from user 2 shows in the dialog.
  if (!input.reply) return;
  say('waiting-for-reply');
  await page.locator('#switchboard-widget li.theirs', { hasText: input.reply }).waitFor();
  say('replied', { body: input.reply });
  await page.screenshot({ path: `${shots}/widget.png` });
  // closeChat hides the panel, openChat shows it again.
  const panel = page.locator('#switchboard-widget section.panel');
  await page.evaluate(() => window.imbaApi.closeChat());
  await panel.waitFor({ state: 'hidden' });
  await page.evaluate(() => window.imbaApi.openChat());
  await panel.waitFor({ state: 'visible' });
  say('closed');
  // A guest (load() with no argument): the widget asks to sign in on the site.
  if (!input.guestPage) return;
  const guest = await newPage();
  await guest.goto(input.guestPage);
  await guest.waitForFunction(() => window.guestResult !== undefined);
  await guest.evaluate(() => window.imbaApi.openChat());
  const note = await guest.locator('#switchboard-widget li.note').first().textContent();
  say('guest', { result: await guest.evaluate(() => window.guestResult), note });
}

async function fastpath() {
  const agent = await newPage();
  await signIn(agent, 'ann', input.passwords.ann);
  await agent.click('[data-tab="agent"]');
  await agent.click('[data-workgroup="sales"]');
  await agent.waitForSelector('[data-workgroup="sales"][aria-pressed="true"]');
  say('agent-online');
  const visitor = await newPage(true);
  await visitor.goto(`${base}/ask/sales`);
  await visitor.fill('input[name="nickname"]', 'Vera');
  await visitor.fill('input[name="email"]', 'vera@example.org');
  await visitor.fill('textarea[name="question"]', 'Do you ship to Mars?');
  await visitor.click('#ask-form button[type="submit"]');
  await visitor.waitForSelector('#status:text("in the queue")');
  say('queued', { status: await visitor.textContent('#status') });
  await agent.waitForSelector('#offers .offer .countdown');
  say('offered', { countdown: await agent.textContent('#offers .offer .countdown'), question: await agent.textContent('#offers .offer q') });
  await agent.screenshot({ path: `${shots}/agent-console.png` });
  await agent.click('#offers .offer .accept');
  await agent.waitForSelector('#chat-title:text("@conference.localhost")');
  await visitor.waitForSelector('#composer:not([hidden])');
  say('accepted', { status: await visitor.textContent('#status') });
  await visitor.fill('#text', 'Hello, I have a question');
  await visitor.press('#text', 'Enter');
  await agent.waitForSelector('#messages li .body:text("Hello, I have a question")');
  await agent.fill('#text', 'Yes, we do');
  await agent.press('#text', 'Enter');
  await visitor.waitForSelector('#messages li .body:text("Yes, we do")');
  say('chatted');
  await visitor.screenshot({ path: `${shots}/visitor-page.png` });
}

try {
  await ({ chat, widget, fastpath })[input.scenario]();
  say('done');
  await browser.close();
} catch (error) {
  say('failed', { error: String(error && error.stack || error) });
  await browser.close();
  process.exit(1);
}
