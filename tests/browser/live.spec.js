// `patreport report --web` in Chromium: the table fills in while the scan runs. The demo
// organization is slowed (150 ms a request, two listings at a time: about half a minute for
// 400 people), so rows are read seconds before the scan can end; the test looks at rows and
// the page's own "done" flag in one snapshot, and never waits for the clock.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { test, expect } = require('@playwright/test');

const root = path.resolve(__dirname, '..', '..');
const bin = process.env.PATREPORT_BIN || path.join(root, 'target', 'debug', 'patreport');

test('the live page shows rows before the scan ends, as text', async ({ page }) => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'patreport-live-'));
  const child = spawn(bin, [
    'report', '--demo', '--demo-users', '400', '--demo-latency', '150ms', '--concurrency', '2',
    '--out', out, '--format', 'json,html', '--web', '--web-port', '0',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let printed = '';
  child.stdout.on('data', (d) => { printed += d; });
  child.stderr.on('data', (d) => { printed += d; });
  try {
    const url = await new Promise((resolve, reject) => {
      const look = () => {
        const m = printed.match(/live report: (http:\/\/127\.0\.0\.1:\d+\/)/);
        if (m) resolve(m[1]);
      };
      child.stdout.on('data', look);
      child.stderr.on('data', look);
      child.on('exit', (code) => reject(new Error(`patreport exited (${code}) before serving: ${printed}`)));
    });
    const dialogs = [];
    const foreign = [];
    page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss().catch(() => {}); });
    await page.context().route('**/*', (route) => {
      if (route.request().url().startsWith(url)) return route.continue();
      foreign.push(route.request().url());
      return route.abort();
    });
    await page.goto(url);
    // Rows shown while the page still says the scan is running.
    await expect.poll(async () => page.evaluate(() => ({
      rows: document.querySelectorAll('#rows tr').length > 0,
      done: document.body.dataset.done,
    }))).toEqual({ rows: true, done: 'false' });
    await expect(page.locator('#status')).toContainText('users read');
    const inPage = await page.evaluate(() => ({
      pwned: typeof window.__pwned,
      markup: document.querySelectorAll('#rows img, #rows script, #rows a').length,
    }));
    expect(inPage).toEqual({ pwned: 'undefined', markup: 0 });
    expect(dialogs).toEqual([]);
    expect(foreign).toEqual([]);
  } finally {
    child.kill('SIGKILL');
    fs.rmSync(out, { recursive: true, force: true });
  }
});
