// The HTML view in Chromium, against the JSON and CSV of the same run (see global-setup.js).
const fs = require('node:fs');
const { test, expect } = require('@playwright/test');
const {
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
} = require('./helpers');

const demo = reports().demo;
const report = loadJson(demo.json);
const rows = report.rows;

let seen;
test.beforeEach(async ({ page }) => {
  seen = await openView(page, demo);
});
test.afterEach(async ({ page }) => {
  await expectNothingEscaped(page, seen);
});

test('the header states the organization, when the data was read and the coverage', async ({ page }) => {
  await expect(page.locator('#title')).toHaveText(`PAT report: ${report.run.org}`);
  await expect(page).toHaveTitle(`PAT report: ${report.run.org}`);
  await expect(page.locator('#read-at')).toContainText(report.run.finished.replace('T', ' ').replace('Z', ' UTC'));
  const s = report.summary;
  const n = new Intl.NumberFormat('en');
  await expect(page.locator('#coverage')).toContainText(
    `${n.format(s.users_listed)} users listed, ${n.format(s.users_read)} read`,
  );
  await expect(page.locator('#incomplete')).toBeHidden();
  await expect(page.locator('#errors-note')).toContainText('None');
  await expect(page.locator('#run')).toContainText(`patreport ${report.run.tool_version}`);
  await expect(page.locator('#run')).toContainText(n.format(report.run.api_calls));
});

test('every row of the JSON is in the table, in the default order, cell for cell', async ({ page }) => {
  expect(await shownCount(page)).toBe(rows.length);
  const header = page.locator('th[aria-sort]');
  await expect(header).toHaveCount(1);
  await expect(header).toHaveAttribute('aria-sort', 'ascending');
  await expect(header).toContainText('Expires');
  const shown = await allRows(page);
  expect(shown.length).toBe(rows.length);
  const expected = byExpiry(rows).map(expectedCells);
  expect(shown.map(({ position, ...cells }) => cells)).toEqual(expected);
  expect(new Set(shown.map((r) => r.id)).size).toBe(rows.length);
});

test('rows are laid out by arithmetic that holds: fixed heights, the right rows at any scroll', async ({ page }) => {
  const layout = await page.evaluate(() => {
    const scroller = document.getElementById('scroller');
    const head = document.querySelector('#tokens thead').getBoundingClientRect().height;
    const heights = Array.from(document.querySelectorAll('#rows tr.row'), (tr) => tr.getBoundingClientRect().height);
    return { head, heights, scrollHeight: scroller.scrollHeight };
  });
  expect(new Set(layout.heights)).toEqual(new Set([44]));
  expect(layout.scrollHeight).toBe(Math.round(layout.head + rows.length * 44));
  // Deep in the table, the row just under the sticky header is the one the scroll says.
  const target = Math.floor(rows.length * 0.7);
  const under = await page.evaluate(async (at) => {
    const scroller = document.getElementById('scroller');
    scroller.scrollTop = at * 44;
    await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
    const top = scroller.getBoundingClientRect().top + scroller.clientTop +
      document.querySelector('#tokens thead').getBoundingClientRect().height;
    const tr = Array.from(document.querySelectorAll('#rows tr.row')).find((r) => Math.abs(r.getBoundingClientRect().top - top) < 1);
    return tr && Number(tr.getAttribute('aria-rowindex')) - 2;
  }, target);
  expect(under).toBe(target);
  const expected = byExpiry(rows);
  const laidOut = await renderedRows(page);
  const row = laidOut.find((r) => r.position === target);
  expect(row.id).toBe(expected[target].authorization_id);
});

test('sorting by each column orders the rows, with aria-sort on its header', async ({ page }) => {
  const firstIds = async (k = 8) => (await renderedRows(page)).slice(0, k).map((r) => r.id);
  const sortBy = async (label) => {
    await page.locator('#head th button', { hasText: label }).click();
    expect(await shownCount(page)).toBe(rows.length);
  };
  const ordered = (key, dir) => {
    // Ascending by key, rows without one last in both directions; ties in report order
    // ascending and reversed descending, as the page does.
    const valued = rows.map((row, i) => ({ row, i, k: key(row) })).filter((x) => x.k != null);
    valued.sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : a.i - b.i));
    if (dir === 'descending') valued.reverse();
    const empty = rows.filter((row) => key(row) == null);
    return valued.map((x) => x.row).concat(empty).map((row) => row.authorization_id);
  };
  const ariaSort = (label) => page.locator('#head th', { hasText: label });

  await sortBy('Expires');
  await expect(ariaSort('Expires')).toHaveAttribute('aria-sort', 'descending');
  expect(await firstIds()).toEqual(ordered((r) => (r.valid_to ? Date.parse(r.valid_to) : null), 'descending').slice(0, 8));

  await sortBy('Lifetime');
  await expect(ariaSort('Lifetime')).toHaveAttribute('aria-sort', 'descending');
  await expect(page.locator('th[aria-sort]')).toHaveCount(1);
  expect(await firstIds()).toEqual(ordered((r) => r.lifetime_days, 'descending').slice(0, 8));
  await sortBy('Lifetime');
  await expect(ariaSort('Lifetime')).toHaveAttribute('aria-sort', 'ascending');
  expect(await firstIds()).toEqual(ordered((r) => r.lifetime_days, 'ascending').slice(0, 8));

  await sortBy('Authorization id');
  await expect(ariaSort('Authorization id')).toHaveAttribute('aria-sort', 'ascending');
  expect(await firstIds()).toEqual(ordered((r) => r.authorization_id, 'ascending').slice(0, 8));

  const statusOrder = ['active', 'expiring', 'expired', 'invalid'];
  await sortBy('Status');
  expect(await firstIds()).toEqual(ordered((r) => statusOrder.indexOf(r.status), 'ascending').slice(0, 8));
  await sortBy('Status');
  expect((await renderedRows(page))[0].status).toBe('invalid');

  await sortBy('Full access');
  await expect(ariaSort('Full access')).toHaveAttribute('aria-sort', 'descending');
  expect(await firstIds()).toEqual(ordered((r) => Number(r.full_access), 'descending').slice(0, 8));
  await sortBy('Global');
  expect(await firstIds()).toEqual(ordered((r) => Number(r.global), 'descending').slice(0, 8));

  // Text columns sort in reading order: check the collator's order holds on the first rows.
  const collator = new Intl.Collator(undefined, { sensitivity: 'base', numeric: true });
  for (const [label, field] of [['Owner', 'owner'], ['PAT name', 'name'], ['Scope', 'scope']]) {
    await sortBy(label);
    await expect(ariaSort(label)).toHaveAttribute('aria-sort', 'ascending');
    const values = (await renderedRows(page)).map((r) => r[field]).filter((v) => v !== '(no name)');
    for (let k = 1; k < values.length; k++) expect(collator.compare(values[k - 1], values[k])).toBeLessThanOrEqual(0);
    await sortBy(label);
    await expect(ariaSort(label)).toHaveAttribute('aria-sort', 'descending');
  }
});

test('headers, cards and row details work from the keyboard', async ({ page }) => {
  const header = page.locator('#head th button', { hasText: 'PAT name' });
  await header.focus();
  await page.keyboard.press('Enter');
  await expect(page.locator('#head th', { hasText: 'PAT name' })).toHaveAttribute('aria-sort', 'ascending');
  await page.keyboard.press('Space');
  await expect(page.locator('#head th', { hasText: 'PAT name' })).toHaveAttribute('aria-sort', 'descending');

  await page.locator('[data-card="status-expired"]').focus();
  await page.keyboard.press('Enter');
  await expect(page.locator('[data-card="status-expired"]')).toHaveAttribute('aria-pressed', 'true');
  expect(await shownCount(page)).toBe(rows.filter((r) => r.status === 'expired').length);

  const toggle = page.locator('#rows tr.row').first().locator('button[data-action="detail"]');
  await toggle.focus();
  await page.keyboard.press('Enter');
  const detail = page.locator('#rows tr.detail');
  await expect(detail).toHaveCount(1);
  const id = await page.locator('#rows tr.row').first().locator('.id').textContent();
  const row = rows.find((r) => r.authorization_id === id);
  await expect(detail).toContainText(shownText(row.scope));
  await expect(detail).toContainText(shownText(row.owner_descriptor));
  await expect(detail).toContainText(row.target_accounts.length ? row.target_accounts[0] : 'all organizations');
  // Focus stays on the toggle across the redraw, which says it is open.
  await expect(page.locator('#rows button[data-action="detail"][aria-expanded="true"]')).toBeFocused();
  expect(await detail.evaluate((tr) => tr.getBoundingClientRect().height)).toBe(168);
  await page.keyboard.press('Enter');
  await expect(detail).toHaveCount(0);
});

test('each status and flag filter, and their combination, shows the expected rows', async ({ page }) => {
  for (const status of ['active', 'expiring', 'expired', 'invalid']) {
    await page.locator('#status-filter').selectOption(status);
    const expected = rows.filter((r) => r.status === status);
    expect(expected.length).toBeGreaterThan(0);
    expect(await shownCount(page)).toBe(expected.length);
    expect((await renderedRows(page)).every((r) => r.status === status)).toBe(true);
  }
  await page.locator('#status-filter').selectOption('');
  expect(await shownCount(page)).toBe(rows.length);

  await page.locator('#only-full_access').check();
  expect(await shownCount(page)).toBe(rows.filter((r) => r.full_access).length);
  await page.locator('#only-global').check();
  expect(await shownCount(page)).toBe(rows.filter((r) => r.full_access && r.global).length);
  await page.locator('#only-full_access').uncheck();
  expect(await shownCount(page)).toBe(rows.filter((r) => r.global).length);
  await page.locator('#status-filter').selectOption('expiring');
  const both = rows.filter((r) => r.global && r.status === 'expiring');
  expect(await shownCount(page)).toBe(both.length);
  expect((await allRows(page)).map((r) => r.id)).toEqual(byExpiry(both).map((r) => r.authorization_id));
  await page.locator('#clear').click();
  expect(await shownCount(page)).toBe(rows.length);
  await expect(page.locator('#shown')).toHaveText(`Showing all ${new Intl.NumberFormat('en').format(rows.length)} PATs`);
});

test('the search matches owner, principal name, PAT name, scope and authorization id', async ({ page }) => {
  const someone = rows[Math.floor(rows.length / 3)];
  const queries = [
    'github',
    'SYNC 1',
    someone.owner_principal_name.split('@')[0],
    someone.owner_display_name.split(' ')[0].toLowerCase(),
    someone.authorization_id,
    someone.authorization_id.slice(0, 6).toUpperCase(),
    'vso.code_write',
    'full access',
    'partner.example.org',
    '<img',
    '__pwned',
    '\u202e',
    'no such token anywhere',
  ];
  const search = page.locator('#search');
  for (const query of queries) {
    await search.fill(query);
    const expected = rows.filter((r) => matchesSearch(r, query));
    expect(await shownCount(page), query).toBe(expected.length);
    const ids = new Set(expected.map((r) => r.authorization_id));
    expect((await renderedRows(page)).every((r) => ids.has(r.id)), query).toBe(true);
  }
  await expect(page.locator('#no-rows')).toBeVisible();
  // The search combines with the filters.
  await search.fill('sync');
  await page.locator('#status-filter').selectOption('expired');
  expect(await shownCount(page)).toBe(rows.filter((r) => r.status === 'expired' && matchesSearch(r, 'sync')).length);
  await search.press('Escape');
  expect(await shownCount(page)).toBe(rows.filter((r) => r.status === 'expired').length);
});

test('the summary cards show the counts and filter the table when clicked', async ({ page }) => {
  const n = new Intl.NumberFormat('en');
  const cards = [
    ['status-active', (r) => r.status === 'active'],
    ['status-expiring', (r) => r.status === 'expiring'],
    ['status-expired', (r) => r.status === 'expired'],
    ['status-invalid', (r) => r.status === 'invalid'],
    ['flag-full_access', (r) => r.full_access],
    ['flag-global', (r) => r.global],
  ];
  await expect(page.locator('#cards .card')).toHaveCount(cards.length);
  await expect(page.locator('[data-card="status-expiring"]')).toContainText(`within ${report.run.expiring_days} days`);
  for (const [id, keep] of cards) {
    const card = page.locator(`[data-card="${id}"]`);
    const count = rows.filter(keep).length;
    await expect(card.locator('.count')).toHaveText(n.format(count));
    await card.click();
    await expect(card).toHaveAttribute('aria-pressed', 'true');
    expect(await shownCount(page), id).toBe(count);
    await card.click();
    await expect(card).toHaveAttribute('aria-pressed', 'false');
    expect(await shownCount(page), id).toBe(rows.length);
  }
  // A status card and a flag card together; the controls follow the cards.
  await page.locator('[data-card="status-active"]').click();
  await page.locator('[data-card="flag-full_access"]').click();
  expect(await shownCount(page)).toBe(rows.filter((r) => r.status === 'active' && r.full_access).length);
  await expect(page.locator('#status-filter')).toHaveValue('active');
  await expect(page.locator('#only-full_access')).toBeChecked();
  await page.locator('[data-card="status-expired"]').click();
  await expect(page.locator('[data-card="status-active"]')).toHaveAttribute('aria-pressed', 'false');
  expect(await shownCount(page)).toBe(rows.filter((r) => r.status === 'expired' && r.full_access).length);
});

test('hostile names show as text and do nothing', async ({ page }) => {
  const hostile = rows.filter((r) =>
    ['<img', '</script', 'javascript:', '\u202e', '=HYPERLINK'].some(
      (trap) => r.owner_display_name.includes(trap) || (r.pat_name ?? '').includes(trap),
    ),
  );
  expect(hostile.length).toBeGreaterThan(5);
  for (const query of ['__pwned', '<', 'javascript:', '\u202e', '=hyperlink']) {
    await page.locator('#search').fill(query);
    const expected = rows.filter((r) => matchesSearch(r, query));
    const shown = await allRows(page);
    expect(shown.length, query).toBe(expected.length);
    const byId = new Map(shown.map((r) => [r.id, r]));
    for (const row of expected) expect(byId.get(row.authorization_id), query).toEqual({ position: byId.get(row.authorization_id).position, ...expectedCells(row) });
  }
  // The literal text is there, and the right-to-left override is shown, not obeyed.
  await page.locator('#search').fill('__pwned');
  await expect(page.locator('#rows').getByText('<img src=x onerror=window.__pwned=1>').first()).toBeVisible();
  await expect(page.locator('#rows').getByText('</script><script>window.__pwned=1</script>', { exact: false }).first()).toBeVisible();
  await page.locator('#search').fill('\u202e');
  await expect(page.locator('#rows .ctl').first()).toHaveText('U+202E');
  // Open the detail of every hostile row shown: the raw values are text there too.
  const toggles = page.locator('#rows button[data-action="detail"]');
  const count = Math.min(await toggles.count(), 6);
  for (let k = 0; k < count; k++) {
    await page.locator('#rows tr.row').nth(k).locator('button[data-action="detail"]').click();
    await expect(page.locator('#rows tr.detail')).toHaveCount(1);
  }
  // Copying an id uses the Clipboard API and nothing else.
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write']);
  const first = page.locator('#rows tr.row').first();
  await first.locator('button[data-action="copy"]').click();
  await expect(first.locator('button[data-action="copy"]')).toHaveText('Copied');
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  expect(copied).toBe(await first.locator('.id').textContent());
});

test('the CSV download holds the rows shown, as the CSV writer writes them', async ({ page }) => {
  const written = parseCsv(fs.readFileSync(demo.csv, 'utf8'));
  const header = written[0];
  const idColumn = header.indexOf('Authorization id');
  expect(idColumn).toBeGreaterThan(-1);
  const byId = new Map(written.slice(1).map((record) => [record[idColumn], record]));

  const download = async () => {
    const [file] = await Promise.all([page.waitForEvent('download'), page.locator('#download').click()]);
    expect(file.suggestedFilename()).toBe(`patreport-${report.run.org}-shown.csv`);
    return parseCsv(fs.readFileSync(await file.path(), 'utf8'));
  };

  // Formula-looking names: every field as the writer has it, leading quote included.
  await page.locator('#search').fill('=');
  const formulas = await download();
  expect(formulas[0]).toEqual(header);
  const expected = byExpiry(rows.filter((r) => matchesSearch(r, '=')));
  expect(formulas.length - 1).toBe(expected.length);
  expect(formulas.slice(1).map((r) => r[idColumn])).toEqual(expected.map((r) => r.authorization_id));
  for (const record of formulas.slice(1)) expect(record).toEqual(byId.get(record[idColumn]));
  const nameColumn = header.indexOf('PAT name');
  const guarded = formulas.slice(1).map((r) => r[nameColumn]).filter((name) => name.startsWith("'="));
  expect(guarded.length).toBeGreaterThan(0);
  expect(formulas.slice(1).some((r) => /^[=+\-@\t\r]/.test(r[nameColumn]))).toBe(false);
  const ownerColumn = header.indexOf('Owner');
  expect(formulas.slice(1).some((r) => r[ownerColumn].startsWith("'=HYPERLINK") || r[nameColumn].startsWith("'=HYPERLINK"))).toBe(true);

  // A filtered view: expired, global.
  await page.locator('#search').fill('');
  await page.locator('#status-filter').selectOption('expired');
  await page.locator('#only-global').check();
  const filtered = await download();
  const kept = byExpiry(rows.filter((r) => r.status === 'expired' && r.global));
  expect(filtered.slice(1).map((r) => r[idColumn])).toEqual(kept.map((r) => r.authorization_id));
  for (const record of filtered.slice(1)) expect(record).toEqual(byId.get(record[idColumn]));
});

test('a narrow window keeps the page usable', async ({ page }) => {
  await page.setViewportSize({ width: 420, height: 800 });
  const widths = await page.evaluate(() => ({ page: document.documentElement.scrollWidth, window: window.innerWidth }));
  expect(widths.page).toBeLessThanOrEqual(widths.window);
  await expect(page.locator('#search')).toBeVisible();
  await page.locator('#search').fill('github');
  expect(await shownCount(page)).toBe(rows.filter((r) => matchesSearch(r, 'github')).length);
  await expect(page.locator('#rows tr.row').first()).toBeVisible();
});

test('printing shows the summary and rows without the controls', async ({ page }) => {
  await page.emulateMedia({ media: 'print' });
  await expect(page.locator('#controls')).toBeHidden();
  await expect(page.locator('#cards')).toBeVisible();
  await expect(page.locator('#rows tr.row').first()).toBeVisible();
  await expect(page.locator('#print-note')).toContainText(`of the ${new Intl.NumberFormat('en').format(rows.length)} shown`);
  await expect(page.locator('#rows button').first()).toBeHidden();
});

test('a screenshot of the view is saved', async ({ page }, testInfo) => {
  const file = testInfo.outputPath('view.png');
  await page.screenshot({ path: file });
  await testInfo.attach('view', { path: file, contentType: 'image/png' });
  expect(fs.statSync(file).size).toBeGreaterThan(10_000);
});

test('severity sorts the tokens to act on first, and a row names its findings in words', async ({ page }) => {
  await page.locator('#head th button', { hasText: 'Severity' }).click();
  await expect(page.locator('#head th', { hasText: 'Severity' })).toHaveAttribute('aria-sort', 'ascending');
  const rank = { critical: 0, high: 1, medium: 2, low: 3 };
  const first = page.locator('#rows tr.row').first();
  const worst = Math.min(...rows.map((r) => (r.severity == null ? 9 : rank[r.severity])));
  await expect(first.locator('.c-severity')).toHaveText(Object.keys(rank)[worst]);
  const id = await first.locator('.id').textContent();
  const row = rows.find((r) => r.authorization_id === id);
  expect(row.severity).toBe(Object.keys(rank)[worst]);
  await first.locator('button[data-action="detail"]').click();
  const detail = page.locator('#rows tr.detail');
  // The JSON names findings by code; the page says them in words (the labels the summary
  // gives each rule), with their severity and what to do.
  const label = new Map(report.summary.findings.by_rule.map((r) => [r.rule, r]));
  expect(row.findings.length).toBeGreaterThan(0);
  for (const code of row.findings) {
    const rule = label.get(code);
    await expect(detail).toContainText(`${rule.label} (${rule.severity}):`);
  }
});

test('a revoke plan of the shown rows is what patreport revoke --plan reads', async ({ page }) => {
  await page.locator('#only-full_access').check();
  const [file] = await Promise.all([page.waitForEvent('download'), page.locator('#revoke-plan').click()]);
  expect(file.suggestedFilename()).toBe(`patreport-${report.run.org}-revoke-plan.json`);
  const path = await file.path();
  const plan = JSON.parse(fs.readFileSync(path, 'utf8'));
  expect(plan.kind).toBe('patreport.revoke-plan/1');
  expect(plan.org).toBe(report.run.org);
  const kept = byExpiry(rows.filter((r) => r.full_access && r.status !== 'invalid'));
  expect(plan.tokens.map((t) => t.authorization_id)).toEqual(kept.map((r) => r.authorization_id));
  const first = plan.tokens[0];
  const row = rows.find((r) => r.authorization_id === first.authorization_id);
  expect(first).toEqual({
    authorization_id: row.authorization_id,
    owner_display_name: row.owner_display_name,
    owner_principal_name: row.owner_principal_name,
    owner_descriptor: row.owner_descriptor,
    pat_name: row.pat_name,
    valid_to: row.valid_to,
    status: row.status,
    findings: row.findings,
  });
  // The command line reads it: it lists the plan's tokens before it asks for a credential.
  const { spawnSync } = require('node:child_process');
  const env = { ...process.env };
  delete env.AZURE_DEVOPS_PAT;
  delete env.AZURE_DEVOPS_PAT_FILE;
  const out = fs.mkdtempSync(require('node:path').join(require('node:os').tmpdir(), 'patreport-plan-'));
  const run = spawnSync('target/debug/patreport', ['revoke', '--plan', path, '--out', out], { env, encoding: 'utf8' });
  expect(run.stdout).toContain(`${plan.tokens.length} tokens of '${report.run.org}' selected (the rows shown in the HTML view)`);
  expect(run.stderr).toContain('AZURE_DEVOPS_PAT');
  fs.rmSync(out, { recursive: true, force: true });
});

test('the severity filter shows the tokens at least that severe', async ({ page }) => {
  const rank = { critical: 0, high: 1, medium: 2, low: 3 };
  for (const [value, worst] of [['0', 0], ['1', 1], ['3', 3]]) {
    await page.locator('#severity-filter').selectOption(value);
    const expected = rows.filter((r) => r.severity != null && rank[r.severity] <= worst).length;
    expect(await shownCount(page)).toBe(expected);
  }
  await page.locator('#only-global').check();
  await page.locator('#severity-filter').selectOption('0');
  expect(await shownCount(page)).toBe(rows.filter((r) => r.severity === 'critical' && r.global).length);
  await page.locator('#clear').click();
  await expect(page.locator('#severity-filter')).toHaveValue('');
  expect(await shownCount(page)).toBe(rows.length);
});
