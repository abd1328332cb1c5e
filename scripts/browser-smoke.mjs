#!/usr/bin/env node
// Smoke test for the headless browser set up by scripts/browser.sh: loads a data: URL page (no
// server, no network), clicks its button, checks the text changed and saves a screenshot.
//
// Usage:
//   eval "$(scripts/browser.sh env)" && node scripts/browser-smoke.mjs OUT.png
//
// Notes:
//   - playwright-core is imported from $CALLAHEAD_PLAYWRIGHT (ESM ignores NODE_PATH) and drives
//     $CALLAHEAD_CHROMIUM (Debian's chromium); each run uses a fresh profile directory, removed
//     at the end.
//   - Exits 0 on success, 1 on any failure, 2 on bad usage.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ARGS = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
];

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>callahead smoke</title>
<style>
  body { font: 16px sans-serif; margin: 2rem; }
  button { font: inherit; padding: .4rem 1rem; }
  #status { margin-top: 1rem; font-weight: bold; }
</style></head>
<body>
  <h1>callahead browser smoke</h1>
  <button id="go" type="button">Take task</button>
  <p id="status">Task open</p>
  <script>
    document.getElementById('go').addEventListener('click', () => {
      document.getElementById('status').textContent = 'Task taken by agent';
    });
  </script>
</body></html>`;

function fail(msg) {
    process.stderr.write(`browser-smoke.mjs: error: ${msg}\n`);
    process.exit(1);
}

async function main() {
    const out = process.argv[2];
    if (process.argv.length !== 3 || out.startsWith('-')) {
        process.stderr.write('Usage: node scripts/browser-smoke.mjs OUT.png\n');
        process.exit(2);
    }
    const entry = process.env.CALLAHEAD_PLAYWRIGHT;
    const executablePath = process.env.CALLAHEAD_CHROMIUM;
    if (!entry || !executablePath) fail('CALLAHEAD_PLAYWRIGHT/CALLAHEAD_CHROMIUM unset: eval "$(scripts/browser.sh env)"');
    const { chromium } = await import(entry);

    // Playwright refuses --user-data-dir in args; a persistent context takes the fresh directory.
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'callahead-chromium-'));
    const started = Date.now();
    let context;
    try {
        context = await chromium.launchPersistentContext(profile, {
            executablePath,
            headless: true,
            args: ARGS,
            viewport: { width: 640, height: 360 },
            timeout: 60_000,
        });
        const page = context.pages()[0] ?? (await context.newPage());
        const errors = [];
        page.on('pageerror', (e) => errors.push(String(e)));
        await page.goto('data:text/html;charset=utf-8,' + encodeURIComponent(PAGE));
        const before = await page.textContent('#status');
        if (before !== 'Task open') fail(`unexpected initial text: ${JSON.stringify(before)}`);
        await page.click('#go');
        await page.waitForFunction(() => document.getElementById('status').textContent !== 'Task open', null, {
            timeout: 5_000,
        });
        const after = await page.textContent('#status');
        if (after !== 'Task taken by agent') fail(`unexpected text after click: ${JSON.stringify(after)}`);
        if (errors.length) fail(`page errors: ${errors.join('; ')}`);
        await page.screenshot({ path: out });
        // A persistent context has no Browser object to ask, and the user agent says 156.0.0.0.
        const { product } = await (await context.newCDPSession(page)).send('Browser.getVersion');
        process.stderr.write(
            `browser-smoke.mjs: ok: ${product}, clicked, text changed, screenshot ${out} (${Date.now() - started} ms)\n`,
        );
    } finally {
        if (context) await context.close();
        fs.rmSync(profile, { recursive: true, force: true });
    }
}

main().catch((e) => fail(e && e.stack ? e.stack : String(e)));
