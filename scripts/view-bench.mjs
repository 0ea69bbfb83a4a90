#!/usr/bin/env node
// Measures a report's HTML view in headless Chromium (Playwright, Debian's /usr/bin/chromium
// or PATREPORT_CHROMIUM) and prints one JSON line:
//
//   {"html_bytes", "json_bytes", "first_rows_ms", "keystroke_ms", "rows"}
//
// first_rows_ms: from navigation start until the first animation frame in which a data row
//   is in the DOM and on screen (the frame that paints it); the median of three loads.
// keystroke_ms: for single characters typed into the search box, from the key event until
//   the frame after the table was redrawn; the median over ten keystrokes.
//
// Usage: node scripts/view-bench.mjs REPORT.html [REPORT.json]
// (the JSON defaults to the HTML's path with .json; json_bytes is null when there is none).
// Targets (issue 12): html_bytes <= 1.5 x json_bytes, first_rows_ms <= 1500, keystroke_ms <= 100.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
const { chromium } = require('@playwright/test');

const LOADS = 3;
const KEYS = 'github syn'; // ten characters, each narrowing the search
const median = (values) => {
  const sorted = values.slice().sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const round = (ms) => Math.round(ms * 10) / 10;

const [htmlArg, jsonArg] = process.argv.slice(2);
if (!htmlArg) {
  console.error('usage: node scripts/view-bench.mjs REPORT.html [REPORT.json]');
  process.exit(2);
}
const html = path.resolve(htmlArg);
const json = path.resolve(jsonArg ?? html.replace(/\.html$/, '.json'));
const sizeOf = (file) => (fs.existsSync(file) ? fs.statSync(file).size : null);

// Runs in the page before its own script: watches every frame for the first visible data row.
function watchFirstRows() {
  const look = () => {
    const row = document.querySelector('#rows tr.row');
    if (row) {
      const box = row.getBoundingClientRect();
      if (box.height > 0 && box.top < window.innerHeight && box.bottom > 0) {
        window.__benchFirstRows = performance.now();
        return;
      }
    }
    requestAnimationFrame(look);
  };
  requestAnimationFrame(look);
}

// Runs in the loaded page: times each keystroke from its event to the frame after the table
// changed.
function watchKeystrokes() {
  const bench = { times: [], start: null };
  window.__benchKeys = bench;
  const rows = document.getElementById('rows');
  document.getElementById('search').addEventListener('keydown', (event) => {
    bench.start = event.timeStamp;
  }, { capture: true });
  new MutationObserver(() => {
    if (bench.start === null) return;
    const start = bench.start;
    bench.start = null;
    // The frame that shows the change, then the task after it (the frame has been produced).
    requestAnimationFrame(() => setTimeout(() => bench.times.push(performance.now() - start), 0));
  }).observe(rows, { childList: true });
}

const browser = await chromium.launch({
  executablePath: process.env.PATREPORT_CHROMIUM || '/usr/bin/chromium',
});
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const url = pathToFileURL(html).href;
  const firstRows = [];
  let page;
  for (let load = 0; load < LOADS; load++) {
    if (page) await page.close();
    page = await context.newPage();
    await page.addInitScript(watchFirstRows);
    await page.goto(url, { waitUntil: 'commit', timeout: 120_000 });
    await page.waitForFunction(() => window.__benchFirstRows !== undefined, null, { timeout: 120_000, polling: 50 });
    firstRows.push(await page.evaluate(() => window.__benchFirstRows));
  }
  const rows = await page.evaluate(() => Number(document.getElementById('tokens').getAttribute('aria-rowcount')) - 1);
  // Let the page finish its idle work (lowercasing the searched columns) first.
  await page.waitForTimeout(500);
  await page.evaluate(watchKeystrokes);
  await page.locator('#search').focus();
  for (let k = 0; k < KEYS.length; k++) {
    await page.keyboard.type(KEYS[k]);
    await page.waitForFunction((n) => window.__benchKeys.times.length >= n, k + 1, { polling: 10 });
  }
  const keystrokes = await page.evaluate(() => window.__benchKeys.times);
  console.log(JSON.stringify({
    html_bytes: sizeOf(html),
    json_bytes: sizeOf(json),
    first_rows_ms: round(median(firstRows)),
    keystroke_ms: round(median(keystrokes)),
    rows,
  }));
} finally {
  await browser.close();
}
