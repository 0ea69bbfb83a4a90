// Shared by the browser tests: the reports the global setup made, a guard that records
// anything a hostile name could make the page do, and expectations computed from the JSON
// report of the same run.
const fs = require('node:fs');
const path = require('node:path');
const { pathToFileURL } = require('node:url');
const { expect } = require('@playwright/test');

const root = path.resolve(__dirname, '..', '..');

/** The reports of the global setup: { demo, incomplete }, each { html, json, csv }. */
function reports() {
  return JSON.parse(fs.readFileSync(path.join(root, 'target', 'browser-tests', 'reports.json'), 'utf8'));
}

const jsonCache = new Map();
function loadJson(file) {
  if (!jsonCache.has(file)) jsonCache.set(file, JSON.parse(fs.readFileSync(file, 'utf8')));
  return jsonCache.get(file);
}

/**
 * Opens a report in the page with every way out watched: dialogs, requests (all routed; any
 * but the page itself is refused and recorded), CSP violations, console errors and uncaught
 * errors. Returns the record; `expectNothingEscaped` checks it.
 */
async function openView(page, report) {
  const url = pathToFileURL(report.html).href;
  const seen = { dialogs: [], requests: [], violations: [], errors: [] };
  page.on('dialog', (dialog) => {
    seen.dialogs.push(dialog.message());
    dialog.dismiss().catch(() => {});
  });
  page.on('request', (request) => {
    // The page itself and the CSV it builds in memory (a blob: URL of its own) are the
    // only requests allowed; neither leaves the machine.
    if (request.url() !== url && !request.url().startsWith('blob:')) seen.requests.push(request.url());
  });
  await page.context().route('**/*', (route) => {
    if (route.request().url() === url) return route.continue();
    seen.requests.push(route.request().url());
    return route.abort();
  });
  page.on('console', (message) => {
    if (message.type() === 'error') seen.errors.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => seen.errors.push(`page: ${error.message}`));
  await page.addInitScript(() => {
    // Harness only: collects CSP violations from the moment the document exists.
    const violations = [];
    Object.defineProperty(window, '__cspViolations', { value: violations });
    document.addEventListener('securitypolicyviolation', (event) => {
      violations.push(`${event.violatedDirective} ${event.blockedURI} ${event.sample}`);
    });
  });
  await page.goto(url);
  await expect(page.locator('#shown')).toContainText('Showing');
  return seen;
}

/** Nothing a hostile name could do happened. */
async function expectNothingEscaped(page, seen) {
  const inPage = await page.evaluate(() => ({
    pwned: typeof window.__pwned,
    violations: window.__cspViolations.slice(),
    foreign: document.querySelectorAll('img, iframe, object, embed, link, base, form').length,
    scripts: document.scripts.length,
  }));
  expect(seen.dialogs, 'no dialog opened').toEqual([]);
  expect(seen.requests, 'no request left the page').toEqual([]);
  expect(seen.errors, 'no error was logged').toEqual([]);
  expect(inPage.violations, 'no CSP violation').toEqual([]);
  expect(inPage.pwned, 'no canary global was set').toBe('undefined');
  expect(inPage.foreign, 'no element from the data became markup').toBe(0);
  expect(inPage.scripts, 'the data element and the page script only').toBe(2);
}

// The characters the page shows as a visible code (bidi overrides, zero-width, controls).
const HIDDEN =
  /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F\u061C\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]/g;
function shownText(text) {
  return String(text).replace(HIDDEN, (c) => `U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`);
}

/** What the table shows for a JSON row, cell by cell. */
function expectedCells(row) {
  return {
    owner: shownText(row.owner_display_name),
    principal: shownText(row.owner_principal_name),
    name: row.pat_name == null ? '(no name)' : shownText(row.pat_name),
    status: row.status,
    expires: row.valid_to ? row.valid_to.slice(0, 10) : '',
    full: row.full_access ? 'yes' : 'no',
    global: row.global ? 'yes' : 'no',
    scope: shownText(row.scope_summary),
    lifetime: row.lifetime_days == null ? '' : new Intl.NumberFormat('en').format(row.lifetime_days),
    id: row.authorization_id,
  };
}

/**
 * The rows of the view as the table shows them: those laid out now, or (`all`) every row,
 * read by scrolling the table from top to bottom. Runs in the page, whose policy forbids
 * eval: the reader is written out here rather than passed in as text.
 */
function readRows(page, all) {
  return page.evaluate(async (everything) => {
    const readRow = (tr) => {
      const text = (selector) => {
        const el = tr.querySelector(selector);
        return el ? el.textContent : null;
      };
      return {
        position: Number(tr.getAttribute('aria-rowindex')) - 2,
        owner: text('td.c-owner .primary'),
        principal: text('td.c-owner .secondary'),
        name: text('td.c-pat_name'),
        status: text('td.c-status .badge'),
        expires: text('td.c-expires .secondary'),
        full: text('td.c-full_access'),
        global: text('td.c-global'),
        scope: text('td.c-scope_summary'),
        lifetime: text('td.c-lifetime'),
        id: text('td.c-authorization_id .id'),
      };
    };
    const laidOut = () => Array.from(document.querySelectorAll('#rows tr.row'), readRow);
    if (!everything) return laidOut();
    const scroller = document.getElementById('scroller');
    const frame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));
    const seen = new Map();
    const step = Math.max(100, scroller.clientHeight - 80);
    for (let top = 0; ; top += step) {
      scroller.scrollTop = top;
      await frame();
      await frame();
      for (const row of laidOut()) if (!seen.has(row.position)) seen.set(row.position, row);
      if (top > scroller.scrollHeight) break;
    }
    scroller.scrollTop = 0;
    return Array.from(seen.values()).sort((a, b) => a.position - b.position);
  }, all);
}

/** The rows laid out now, in order. */
const renderedRows = (page) => readRows(page, false);

/** Every row of the current view, in order. */
const allRows = (page) => readRows(page, true);

/** The number of rows the view says it shows (its table's aria-rowcount, less the header). */
async function shownCount(page) {
  return Number(await page.locator('#tokens').getAttribute('aria-rowcount')) - 1;
}

/** The page's search: a case-insensitive substring of any of these fields. */
function matchesSearch(row, query) {
  const q = query.trim().toLowerCase();
  if (!q) return true;
  return [
    row.owner_display_name,
    row.owner_principal_name,
    row.pat_name ?? '',
    row.scope,
    row.scope_summary,
    row.authorization_id,
  ].some((field) => field.toLowerCase().includes(q));
}

/** The default order: soonest expiry first, rows without one last, ties in report order. */
function byExpiry(rows) {
  const keyed = rows.map((row, i) => ({ row, i, at: row.valid_to ? Date.parse(row.valid_to) : null }));
  keyed.sort((a, b) => {
    if (a.at === null || b.at === null) return (a.at === null) - (b.at === null) || a.i - b.i;
    return a.at - b.at || a.i - b.i;
  });
  return keyed.map((k) => k.row);
}

/** RFC 4180 records (quoted fields may hold commas, quotes and line breaks). */
function parseCsv(text) {
  const records = [];
  let record = [];
  let field = '';
  let quoted = false;
  for (let k = 0; k < text.length; k++) {
    const c = text[k];
    if (quoted) {
      if (c === '"' && text[k + 1] === '"') { field += '"'; k++; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { record.push(field); field = ''; }
    else if (c === '\n') { record.push(field); records.push(record); record = []; field = ''; }
    else field += c;
  }
  if (field !== '' || record.length) { record.push(field); records.push(record); }
  return records;
}

module.exports = {
  allRows,
  byExpiry,
  expectNothingEscaped,
  expectedCells,
  loadJson,
  matchesSearch,
  openView,
  parseCsv,
  renderedRows,
  reports,
  shownCount,
  shownText,
};
