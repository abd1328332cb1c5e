// The agents' console in a real headless Chromium (Debian's, driven by playwright-core), against
// a running `callahead demo`. Run by tests/it/console.rs, which starts the demo and passes:
//   CALLAHEAD_BASE     http://127.0.0.1:PORT
//   CALLAHEAD_TOKENS   JSON {name: token} (fraud-agent, fraud-agent-2, care-agent, supervisor, …)
//   CALLAHEAD_SHOTS    a directory for screenshots (queue.png, task.png, task-200.png at 200% zoom)
// and the browser's paths from `scripts/browser.sh env` (CALLAHEAD_AXE: axe-core, run in the pages
// for WCAG 2.1 AA). Prints one line per check and a final `N passed, N failed` line; exits 1 if any
// check failed.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const { chromium } = await import(process.env.CALLAHEAD_PLAYWRIGHT);
const BASE = process.env.CALLAHEAD_BASE;
const TOKENS = JSON.parse(process.env.CALLAHEAD_TOKENS);
const SHOTS = process.env.CALLAHEAD_SHOTS;
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];
const AXE = fs.readFileSync(process.env.CALLAHEAD_AXE, 'utf8');
// WCAG 2.0 A and AA, and 2.1 AA; color-contrast (wcag2aa) named so it can never drop out.
const AXE_OPTIONS = {
  runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa'] },
  rules: { 'color-contrast': { enabled: true } },
  resultTypes: ['violations'],
};

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

/** A fresh browser profile (its own cookies): one agent. `options` go to the context (a
 * viewport, or bypassCSP for the axe checks only). */
async function agent(options = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'callahead-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.CALLAHEAD_CHROMIUM, args: ARGS, headless: true,
    viewport: { width: 1280, height: 900 }, ...options,
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

/** Runs axe-core in the page and fails on any violation, naming the rule, its impact and the
 * offending nodes. The page must belong to a context with bypassCSP: the console's CSP refuses
 * the injected script, as it should. */
async function axe(page, what) {
  // The queue skips its live refresh while the page is hidden: keep the rows still for axe.
  await page.evaluate(() => Object.defineProperty(document, 'hidden', { get: () => true, configurable: true }));
  await page.addScriptTag({ content: AXE });
  const violations = await page.evaluate(async (options) => {
    const result = await window.axe.run(document, options);
    return result.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')),
    }));
  }, AXE_OPTIONS);
  assert(violations.length === 0, `${what}: ${violations.length} axe violation(s)\n${violations.map((v) =>
    `  ${v.id} [${v.impact}] ${v.help}\n    ${v.nodes.join('\n    ')}`).join('\n')}`);
}

/** The page does not scroll sideways. */
async function noSideways(page, what) {
  const { scroll, client } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth,
  }));
  assert(scroll <= client + 1, `${what} scrolls sideways: scrollWidth ${scroll} > clientWidth ${client}`);
}

/** The control is on screen horizontally once scrolled to, visible, and the pointer reaches it
 * (Playwright's actionability checks: visible, stable, enabled, not covered). */
async function clickable(page, locator, what) {
  await locator.scrollIntoViewIfNeeded();
  const box = await locator.boundingBox();
  const width = await page.evaluate(() => document.documentElement.clientWidth);
  assert(box && box.width > 0 && box.height > 0, `${what} is not visible`);
  assert(box.x >= 0 && box.x + box.width <= width + 1, `${what} is off screen: x ${box.x}, width ${box.width}`);
  await locator.click({ trial: true, timeout: 3000 });
}

/** Tabs through the whole page: every stop must draw a focus ring of 2px or more whose colour
 * contrasts 3:1 or more with the background behind the control (WCAG 2.4.7 and 1.4.11). Returns
 * how many stops there were. */
async function focusRings(page, what) {
  // Start from the top of a fresh page (the queue focuses its selected row on load: forget it).
  await page.evaluate(() => sessionStorage.removeItem('cah-selected'));
  await page.reload();
  const seen = new Set();
  const bad = [];
  for (let i = 0; i < 300; i += 1) {
    await page.keyboard.press('Tab');
    const stop = await page.evaluate(() => {
      const el = document.activeElement;
      if (!el || el === document.body) return null;
      const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
      const lum = (c) => {
        const f = (v) => { const s = v / 255; return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4; };
        return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
      };
      let behind = [255, 255, 255];
      for (let p = el.parentElement; p; p = p.parentElement) {
        const c = rgb(getComputedStyle(p).backgroundColor);
        if (c.length === 3 || (c.length === 4 && c[3] > 0)) { behind = c; break; }
      }
      const style = getComputedStyle(el);
      const [a, b] = [lum(rgb(style.outlineColor)), lum(behind)];
      const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
      const key = `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''} ${(el.getAttribute('href') || el.getAttribute('name') || el.textContent).trim().slice(0, 40)}`;
      const index = Array.from(document.querySelectorAll('*')).indexOf(el);
      return {
        key: `${index} ${key}`, ring: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2,
        ratio: Math.round(ratio * 10) / 10,
      };
    });
    if (!stop || seen.has(stop.key)) break;
    seen.add(stop.key);
    if (!stop.ring || stop.ratio < 3) bad.push(`${stop.key} (ring ${stop.ring}, contrast ${stop.ratio})`);
  }
  assert(seen.size >= 5, `${what}: only ${seen.size} tab stops`);
  assert(bad.length === 0, `${what}: focus not visible on ${bad.join('; ')}`);
  return seen.size;
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
  assert(session.value !== TOKENS['fraud-agent'] && !session.value.startsWith('cah_'), 'an opaque session id, not the API token');
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

await check('keyboard: Enter on a focused link or button does what it says, not open the selected row', async () => {
  await ana.page.goto(`${BASE}/console/queue?queue=fraud`);
  await ana.page.keyboard.press('j');
  assert(await ana.page.$('#rows tr.selected'), 'a row is selected');
  await ana.page.focus('.filters button[type=submit]');
  await Promise.all([ana.page.waitForURL(/\/console\/queue\?.*status=/), ana.page.keyboard.press('Enter')]);
  await ana.page.keyboard.press('j');
  await ana.page.focus('header .brand');
  await Promise.all([ana.page.waitForURL(/\/console\/queue$/), ana.page.keyboard.press('Enter')]);
  // The selected row keeps the focus through a live refresh, so Enter still opens it.
  await ana.page.goto(`${BASE}/console/queue?queue=fraud`);
  await ana.page.keyboard.press('j');
  const selected = await ana.page.$eval('#rows tr.selected', (tr) => { tr.dataset.old = '1'; return tr.dataset.id; });
  await ana.page.waitForFunction(() => !document.querySelector('#rows tr[data-old]'), null, { timeout: 15000 });
  await Promise.all([ana.page.waitForURL(/\/console\/tasks\//), ana.page.keyboard.press('Enter')]);
  assert(ana.page.url().endsWith(selected), 'Enter opened the selected task after a refresh');
});

await check('focus is always visible: every tab stop of the queue and a task page draws a ring that stands out', async () => {
  await ana.page.goto(`${BASE}/console/queue?queue=fraud`);
  await focusRings(ana.page, 'queue');
  await ana.page.reload();
  await ana.page.keyboard.press('Tab');
  assert(await ana.page.evaluate(() => document.activeElement.matches('a.skip')), 'the first stop skips to the content');
  await ana.page.keyboard.press('Enter');
  await ana.page.keyboard.press('Tab');
  assert(await ana.page.evaluate(() => document.activeElement.closest('main') !== null), 'and it does');
  await ana.page.goto(`${BASE}/console/queue?queue=fraud`);
  const link = ana.page.locator('#rows a', { hasText: 'Paris' }).first();
  await Promise.all([ana.page.waitForURL(/\/console\/tasks\//), link.click()]);
  await focusRings(ana.page, 'task');
});

await check('single-key shortcuts can be turned off (and on again) in the help dialog', async () => {
  await ana.page.goto(`${BASE}/console/queue?queue=fraud`);
  await ana.page.keyboard.press('?');
  await ana.page.uncheck('#help input[type=checkbox]');
  await ana.page.keyboard.press('Escape');
  await ana.page.reload();
  const before = await ana.page.$$eval('#rows tr.selected', (t) => t.map((r) => r.dataset.id).join());
  await ana.page.keyboard.press('j');
  await ana.page.keyboard.press('j');
  const after = await ana.page.$$eval('#rows tr.selected', (t) => t.map((r) => r.dataset.id).join());
  assert(before === after, `j still moves: ${before} → ${after}`);
  await ana.page.keyboard.press('?');
  assert(!(await ana.page.isVisible('#help')), '? is off too');
  await ana.page.click('[data-help]');
  assert(await ana.page.isVisible('#help'), 'the help button still opens it');
  await ana.page.check('#help input[type=checkbox]');
  await ana.page.keyboard.press('Escape');
  await ana.page.keyboard.press('j');
  const moved = await ana.page.$$eval('#rows tr.selected', (t) => t.map((r) => r.dataset.id).join());
  assert(moved && moved !== after, 'j moves again');
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

await check('a complaint task shows its procedure step by step, and a category without one says so', async () => {
  const auth = { headers: { Authorization: `Bearer ${TOKENS['care-agent']}` } };
  const page = await (await carl.page.request.get(`${BASE}/api/v1/tasks?queue=care&limit=200`, auth)).json();
  const tasks = [];
  for (const item of page.items) {
    tasks.push((await (await carl.page.request.get(`${BASE}/api/v1/tasks/${item.id}`, auth)).json()).task);
  }
  const known = tasks.find((t) => t.context.procedure && t.context.procedure.known);
  const unknown = tasks.find((t) => t.context.procedure && !t.context.procedure.known);
  assert(known && unknown, 'the demo has complaints with and without a procedure');
  await carl.page.goto(`${BASE}/console/tasks/${known.id}`);
  const steps = await carl.page.$$eval('section.procedure ol.steps li', (lis) => lis.map((li) => li.textContent.trim()));
  assert(JSON.stringify(steps) === JSON.stringify(known.context.procedure.steps), `steps shown: ${steps}`);
  assert(!(await carl.page.$('#no-procedure')), 'a known category has no warning');
  await carl.page.goto(`${BASE}/console/tasks/${unknown.id}`);
  assert(await carl.page.isVisible('#no-procedure'), 'an unknown category is shown as such');
  const linked = tasks.find((t) => (t.context.open_in_other_queue || []).length > 0);
  assert(linked, 'a customer with open tasks in both queues');
  await carl.page.goto(`${BASE}/console/tasks/${linked.id}`);
  const other = await carl.page.textContent('section.other-queue');
  assert(other.includes(linked.context.open_in_other_queue[0].title), `the other queue's task is named: ${other}`);
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
  const left = await ben.page.$$eval('#rows tr[data-id] td:nth-child(2) a', (a) => a.length);
  assert(left >= 2, `the other tasks are still listed, with their links: ${left}`);
});

await check('keyboard: n on the queue takes the next task and opens it, held by this agent', async () => {
  await ben.page.goto(`${BASE}/console/queue?queue=fraud`);
  await Promise.all([ben.page.waitForURL(/\/console\/tasks\/[^/?]+$/), ben.page.keyboard.press('n')]);
  assert((await ben.page.textContent('.assignee')).trim() === 'fraud-agent-2', 'held by ben');
  assert((await ben.page.textContent('.status')).trim() === 'claimed', 'claimed');
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

// Accessibility: axe-core (WCAG 2.1 AA, contrast included) on every kind of page in both
// languages, in a context that lets the test inject axe past the CSP; then 200% zoom, and the
// names of the task page's controls as Chromium's accessibility tree computes them.
const auditor = await agent({ bypassCSP: true });
let travelUrl = null;
for (const lang of ['en', 'ru']) {
  await check(`axe (WCAG 2.1 AA) in ${lang}: the login page, also with an error`, async () => {
    await auditor.page.goto(`${BASE}/console/login?lang=${lang}`);
    assert(await auditor.page.getAttribute('html', 'lang') === lang, `lang=${lang}`);
    await axe(auditor.page, 'login');
    await auditor.page.goto(`${BASE}/console/login?error=bad_token`);
    await axe(auditor.page, 'login with an error');
  });

  await check(`axe (WCAG 2.1 AA) in ${lang}: the queue, also with the shortcuts' help open`, async () => {
    await login(auditor.page, TOKENS['supervisor']);
    await auditor.page.goto(`${BASE}/console/queue`);
    await axe(auditor.page, 'queue');
    await auditor.page.setViewportSize({ width: 640, height: 450 });
    await axe(auditor.page, 'queue at 200% zoom');
    await auditor.page.setViewportSize({ width: 1280, height: 900 });
    await auditor.page.keyboard.press('j');
    await auditor.page.keyboard.press('?');
    assert(await auditor.page.isVisible('#help'), 'help open');
    await axe(auditor.page, 'queue with help');
    await auditor.page.keyboard.press('Escape');
  });

  await check(`axe (WCAG 2.1 AA) in ${lang}: an impossible-travel task with its map`, async () => {
    if (!travelUrl) {
      await auditor.page.goto(`${BASE}/console/queue?queue=fraud`);
      const link = auditor.page.locator('#rows a', { hasText: 'Suva' }).first();
      await Promise.all([auditor.page.waitForURL(/\/console\/tasks\//), link.click()]);
      travelUrl = auditor.page.url();
    }
    await auditor.page.goto(travelUrl);
    assert(await auditor.page.$$eval('svg.map circle.place', (c) => c.length) === 2, 'the map');
    await axe(auditor.page, 'task');
    await auditor.page.goto(`${travelUrl}?flash=done`);
    await axe(auditor.page, 'task with a flash');
  });

  await check(`axe (WCAG 2.1 AA) in ${lang}: the supervisor view`, async () => {
    await auditor.page.goto(`${BASE}/console/supervisor`);
    assert(await auditor.page.$('form[action$="/reassign"]'), 'a held task to reassign');
    await axe(auditor.page, 'supervisor');
  });
}

await check('every control of a task page (input, select, textarea, button) has an accessible name', async () => {
  await auditor.page.goto(`${BASE}/console/login?lang=en`);
  await auditor.page.goto(travelUrl);
  const cdp = await auditor.context.newCDPSession(auditor.page);
  const { root } = await cdp.send('DOM.getDocument', { depth: 0 });
  const { nodeIds } = await cdp.send('DOM.querySelectorAll', {
    nodeId: root.nodeId, selector: 'input:not([type=hidden]), select, textarea, button',
  });
  assert(nodeIds.length >= 10, `controls: ${nodeIds.length}`);
  const nameless = [];
  for (const nodeId of nodeIds) {
    const { nodes } = await cdp.send('Accessibility.getPartialAXTree', { nodeId, fetchRelatives: false });
    if (nodes[0] && nodes[0].ignored) continue; // not rendered (the closed help dialog's)
    const name = nodes[0] && nodes[0].name ? String(nodes[0].name.value).trim() : '';
    if (!name) {
      const { node } = await cdp.send('DOM.describeNode', { nodeId });
      nameless.push(`${node.localName}[${node.attributes.join(' ')}]`);
    }
  }
  await cdp.detach();
  assert(nameless.length === 0, `without a name: ${nameless.join(', ')}`);
});

await check('at 200% zoom (640×450 CSS px), in both languages: the queue, a task page and the supervisor view do not scroll sideways; the main controls are reachable', async () => {
  const zoomed = await agent({ viewport: { width: 640, height: 450 } });
  await login(zoomed.page, TOKENS['supervisor']);
  for (const lang of ['en', 'ru']) {
    await zoomed.page.goto(`${BASE}/console/login?lang=${lang}`);
    await zoomed.page.goto(`${BASE}/console/queue`);
    await noSideways(zoomed.page, `the queue (${lang})`);
    const links = zoomed.page.locator('#rows tr[data-id] a');
    const count = await links.count();
    assert(count >= 3, `rows: ${count}`);
    for (let i = 0; i < count; i += 1) await clickable(zoomed.page, links.nth(i), `row ${i}'s link (${lang})`);
    await clickable(zoomed.page, zoomed.page.locator('[data-next]').first(), `the next-task button (${lang})`);
    await zoomed.page.goto(travelUrl);
    await noSideways(zoomed.page, `the task page (${lang})`);
    await clickable(zoomed.page, zoomed.page.locator('#claim'), `the claim button (${lang})`);
    await clickable(zoomed.page, zoomed.page.locator('#resolve'), `the resolve button (${lang})`);
    if (SHOTS && lang === 'en') await zoomed.page.screenshot({ path: path.join(SHOTS, 'task-200.png'), fullPage: true });
    await zoomed.page.goto(`${BASE}/console/supervisor`);
    await noSideways(zoomed.page, `the supervisor view (${lang})`);
  }
  await close(zoomed);
});
await close(auditor);

await check('the console speaks Russian when asked', async () => {
  await ana.page.goto(`${BASE}/console/login?lang=ru`);
  await ana.page.goto(`${BASE}/console/queue`);
  assert((await ana.page.textContent('header')).includes('Выйти'), 'Russian labels');
});

await check('logout ends the session, server-side', async () => {
  await ana.page.goto(`${BASE}/console/queue`);
  const before = (await ana.context.cookies()).find((c) => c.name === 'cah_session');
  await Promise.all([ana.page.waitForURL(/\/console\/login/), ana.page.click('form[action="/console/logout"] button')]);
  await ana.page.goto(`${BASE}/console/queue`);
  assert(ana.page.url().endsWith('/console/login'), 'logged out');
  // The old cookie, put back (a copy someone kept), is worth nothing now.
  await ana.context.addCookies([before]);
  await ana.page.goto(`${BASE}/console/queue`);
  assert(ana.page.url().endsWith('/console/login'), 'a copied session cookie still worked after logout');
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
