// The agents' console in a real headless Chromium (Debian's, driven by playwright-core), against
// a running `callahead demo`. Run by tests/it/console.rs, which starts the demo and passes:
//   CALLAHEAD_BASE     http://127.0.0.1:PORT
//   CALLAHEAD_TOKENS   JSON {name: token} (fraud-agent, fraud-agent-2, care-agent, supervisor, …)
//   CALLAHEAD_SHOTS    a directory for screenshots (queue.png, task.png)
// and the browser's paths from `scripts/browser.sh env`. Prints one line per check and a final
// `N passed, N failed` line; exits 1 if any check failed.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const { chromium } = await import(process.env.CALLAHEAD_PLAYWRIGHT);
const BASE = process.env.CALLAHEAD_BASE;
const TOKENS = JSON.parse(process.env.CALLAHEAD_TOKENS);
const SHOTS = process.env.CALLAHEAD_SHOTS;
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];

let passed = 0;
let failed = 0;
const timings = {};

async function check(name, body) {
  try {
    await body();
    passed += 1;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
  }
}

function assert(cond, what) {
  if (!cond) throw new Error(what);
}

/** A fresh browser profile (its own cookies): one agent. */
async function agent() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'callahead-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.CALLAHEAD_CHROMIUM, args: ARGS, headless: true,
    viewport: { width: 1280, height: 900 },
  });
  const page = context.pages()[0] || await context.newPage();
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  return { context, page, errors, dir };
}

async function close(a) {
  await a.context.close();
  fs.rmSync(a.dir, { recursive: true, force: true });
}

async function login(page, token) {
  await page.goto(`${BASE}/console/login`);
  await page.fill('#token', token);
  await Promise.all([page.waitForURL(/\/console\/queue/), page.click('form[action="/console/login"] button')]);
}

/** When the page first painted and was ready (ms from navigation start), and its weight in
 * bytes by kind, from the browser's own performance timeline. */
async function firstPaint(page) {
  await page.waitForLoadState('load');
  return page.evaluate(() => {
    const paint = performance.getEntriesByType('paint');
    const fcp = paint.find((e) => e.name === 'first-contentful-paint') || paint.find((e) => e.name === 'first-paint');
    const nav = performance.getEntriesByType('navigation')[0];
    const bytes = { html: nav ? nav.decodedBodySize : null, css: 0, js: 0 };
    for (const r of performance.getEntriesByType('resource')) {
      if (r.name.endsWith('.css')) bytes.css += r.decodedBodySize;
      if (r.name.endsWith('.js')) bytes.js += r.decodedBodySize;
    }
    return {
      first_paint_ms: fcp ? Math.round(fcp.startTime) : null,
      dom_ready_ms: nav ? Math.round(nav.domContentLoadedEventEnd) : null,
      load_ms: nav ? Math.round(nav.loadEventEnd) : null,
      bytes,
    };
  });
}

const ana = await agent();
const ben = await agent();
const carl = await agent();
let taskUrl = null;
let taskId = null;

await check('a logged-out browser is sent to the login page', async () => {
  await ana.page.goto(`${BASE}/console/queue`);
  assert(ana.page.url().endsWith('/console/login'), `at ${ana.page.url()}`);
  await ana.page.goto(`${BASE}/console/login`);
  await ana.page.fill('#token', 'cah_wrong');
  await ana.page.click('form[action="/console/login"] button');
  assert((await ana.page.textContent('[role=alert]')).length > 0, 'a wrong token says so');
});

await check('login with a token sets an HttpOnly, SameSite=Strict session cookie', async () => {
  await login(ana.page, TOKENS['fraud-agent']);
  const cookies = await ana.context.cookies();
  const session = cookies.find((c) => c.name === 'cah_session');
  assert(session && session.httpOnly && session.sameSite === 'Strict', JSON.stringify(cookies));
  const readable = await ana.page.evaluate(() => document.cookie);
  assert(!readable.includes('cah_session'), 'scripts cannot read the session');
});

await check('the fraud queue lists fraud tasks, most urgent first, with their columns', async () => {
  await ana.page.goto(`${BASE}/console/queue?queue=fraud`);
  timings.queue = await firstPaint(ana.page);
  const rows = await ana.page.$$eval('#rows tr[data-id]', (trs) => trs.map((tr) => ({
    id: tr.dataset.id, prio: tr.querySelector('.prio').textContent.trim(), cells: tr.children.length,
    overdue: tr.classList.contains('overdue'),
  })));
  assert(rows.length >= 3, `rows: ${rows.length}`);
  assert(rows.every((r) => r.cells === 8), 'eight columns');
  const csp = (await ana.page.request.get(`${BASE}/console/queue`)).headers()['content-security-policy'];
  assert(csp && csp.includes("script-src 'self'") && !csp.includes('unsafe-inline'), `CSP: ${csp}`);
  assert(ana.errors.length === 0, `console errors: ${ana.errors}`);
  if (SHOTS) await ana.page.screenshot({ path: path.join(SHOTS, 'queue.png'), fullPage: true });
});

await check('keyboard: j/k move the selection, ? shows every shortcut, Enter opens the task', async () => {
  await ana.page.keyboard.press('j');
  const first = await ana.page.$eval('#rows tr.selected', (tr) => tr.dataset.id);
  await ana.page.keyboard.press('j');
  const second = await ana.page.$eval('#rows tr.selected', (tr) => tr.dataset.id);
  await ana.page.keyboard.press('k');
  const back = await ana.page.$eval('#rows tr.selected', (tr) => tr.dataset.id);
  assert(first !== second && back === first, `${first} ${second} ${back}`);
  await ana.page.keyboard.press('?');
  assert(await ana.page.isVisible('#help'), 'the help dialog opens');
  const keys = await ana.page.$$eval('#help kbd', (k) => k.map((x) => x.textContent));
  for (const k of ['j', 'k', 'Enter', 'n', 'c', 'r', '?']) assert(keys.includes(k), `help lists ${k}`);
  await ana.page.keyboard.press('Escape');
  await Promise.all([ana.page.waitForURL(/\/console\/tasks\//), ana.page.keyboard.press('Enter')]);
  assert(ana.page.url().endsWith(first), 'Enter opened the selected task');
});

await check('an impossible-travel task shows both cities on the map, the distance, minutes and speed', async () => {
  await ana.page.goto(`${BASE}/console/queue?queue=fraud`);
  const link = ana.page.locator('#rows a', { hasText: 'Paris' }).first();
  await Promise.all([ana.page.waitForURL(/\/console\/tasks\//), link.click()]);
  taskUrl = ana.page.url();
  taskId = taskUrl.split('/').pop();
  timings.task = await firstPaint(ana.page);
  const labels = await ana.page.$$eval('svg.map text.label', (t) => t.map((x) => x.textContent));
  assert(labels.includes('Phnom Penh') && labels.includes('Paris'), `labels: ${labels}`);
  assert(await ana.page.$$eval('svg.map path', (p) => p.length) > 100, 'country outlines drawn');
  assert(await ana.page.$$eval('svg.map circle.place', (c) => c.length) === 2, 'two places');
  const numbers = await ana.page.textContent('figcaption.numbers');
  assert(/9\s?9\d\d km/.test(numbers) && /km\/h/.test(numbers), numbers);
  assert((await ana.page.textContent('.script p')).length > 10, 'a script');
  if (SHOTS) await ana.page.screenshot({ path: path.join(SHOTS, 'task.png'), fullPage: true });
});

await check('claim with the c key; a second agent sees it claimed and cannot take it', async () => {
  await Promise.all([ana.page.waitForURL(/\/console\/tasks\/.*flash=done/), ana.page.keyboard.press('c')]);
  assert((await ana.page.textContent('.assignee')).trim() === 'fraud-agent', 'held by ana');
  await login(ben.page, TOKENS['fraud-agent-2']);
  await ben.page.goto(`${BASE}/console/queue?queue=fraud`);
  const holder = await ben.page.$eval(`#rows tr[data-id="${taskId}"] td:last-child`, (td) => td.textContent.trim());
  assert(holder === 'fraud-agent', `ben sees holder ${holder}`);
  await ben.page.goto(taskUrl);
  await Promise.all([ben.page.waitForURL(/error=/), ben.page.click('#claim')]);
  const alert = await ben.page.textContent('.flash.error');
  assert(alert.includes('fraud-agent'), `the refusal names the holder: ${alert}`);
});

await check('a care agent never sees the fraud task', async () => {
  await login(carl.page, TOKENS['care-agent']);
  const ids = await carl.page.$$eval('#rows tr[data-id]', (trs) => trs.map((t) => t.dataset.id));
  assert(!ids.includes(taskId), 'not in the care queue');
  const response = await carl.page.goto(taskUrl);
  assert(response.status() === 404, `status ${response.status()}`);
});

await check('a state change without the CSRF token is refused', async () => {
  const response = await ana.page.request.post(`${BASE}/console/tasks/${taskId}/notes`, {
    form: { note: 'forged' }, maxRedirects: 0,
  });
  assert(response.status() === 403, `status ${response.status()}`);
  const detail = await (await ana.page.request.get(`${BASE}/api/v1/tasks/${taskId}`, {
    headers: { Authorization: `Bearer ${TOKENS['fraud-agent']}` },
  })).json();
  assert(!detail.task.work.notes.some((n) => n.text === 'forged'), 'nothing was written');
});

await check('resolve as legitimate with a note (r focuses the outcome); the task leaves the queue', async () => {
  // Another agent is looking at the queue meanwhile (the live-refresh check below).
  await ben.page.goto(`${BASE}/console/queue?queue=fraud`);
  assert(await ben.page.$(`#rows tr[data-id="${taskId}"]`), 'ben sees the task before');
  await ana.page.goto(taskUrl);
  await ana.page.keyboard.press('r');
  assert(await ana.page.evaluate(() => document.activeElement.id) === 'outcome', 'r focuses the outcome');
  await ana.page.selectOption('#outcome', 'legitimate');
  await ana.page.fill('#resolve-note', 'customer confirmed the trip on the phone');
  await Promise.all([ana.page.waitForURL(/\/console\/queue/), ana.page.click('#resolve')]);
  const ids = await ana.page.$$eval('#rows tr[data-id]', (trs) => trs.map((t) => t.dataset.id));
  assert(!ids.includes(taskId), 'gone from the queue');
  await ana.page.goto(taskUrl);
  const audit = await ana.page.$$eval('table.audit tbody tr', (trs) => trs.map((t) => t.children[3].textContent));
  assert(audit.includes('claim') && audit.includes('resolve'), `audit: ${audit}`);
  assert((await ana.page.textContent('.outcome')).includes('legitimate'), 'outcome shown');
});

await check('live refresh: the other agent\'s queue drops the resolved task without a reload', async () => {
  await ben.page.waitForFunction((id) => !document.querySelector(`#rows tr[data-id="${id}"]`), taskId, { timeout: 15000 });
});

await check('the supervisor view shows queues, holders and precision per rule', async () => {
  const sue = await agent();
  await login(sue.page, TOKENS['supervisor']);
  await sue.page.goto(`${BASE}/console/supervisor`);
  const text = await sue.page.textContent('main');
  assert(text.includes('impossible_travel'), 'rules listed');
  assert(/0 %|0%/.test(text), 'precision of the resolved rule shown');
  await close(sue);
  const response = await ana.page.goto(`${BASE}/console/supervisor`);
  assert(response.status() === 403, 'agents have no supervisor view');
});

await check('the console speaks Russian when asked', async () => {
  await ana.page.goto(`${BASE}/console/login?lang=ru`);
  await ana.page.goto(`${BASE}/console/queue`);
  assert((await ana.page.textContent('header')).includes('Выйти'), 'Russian labels');
});

await check('logout ends the session', async () => {
  await ana.page.goto(`${BASE}/console/queue`);
  await Promise.all([ana.page.waitForURL(/\/console\/login/), ana.page.click('form[action="/console/logout"] button')]);
  await ana.page.goto(`${BASE}/console/queue`);
  assert(ana.page.url().endsWith('/console/login'), 'logged out');
});

await check('at scale: the queue and a task page with 10,000 open tasks', async () => {
  const large = process.env.CALLAHEAD_LARGE_BASE;
  assert(large, 'CALLAHEAD_LARGE_BASE is set');
  const tokens = JSON.parse(process.env.CALLAHEAD_LARGE_TOKENS);
  const sue = await agent();
  await sue.page.goto(`${large}/console/login`);
  await sue.page.fill('#token', tokens['supervisor']);
  await Promise.all([sue.page.waitForURL(/\/console\/queue/), sue.page.click('form[action="/console/login"] button')]);
  await sue.page.goto(`${large}/console/queue`);
  timings.queue_10k = await firstPaint(sue.page);
  const rows = await sue.page.$$eval('#rows tr[data-id]', (trs) => trs.length);
  assert(rows === 200, `the first 200 of 10,000 shown: ${rows}`);
  await Promise.all([sue.page.waitForURL(/\/console\/tasks\//), sue.page.click('#rows tr[data-id] a')]);
  timings.task_10k = await firstPaint(sue.page);
  await close(sue);
});

for (const a of [ana, ben, carl]) await close(a);
console.log(`timings ${JSON.stringify(timings)}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
