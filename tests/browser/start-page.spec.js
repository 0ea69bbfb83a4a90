// The Functions app's start page (GET /api/PatReport/ui) in Chromium. The page and its policy
// header are the ones the app serves (made by examples/start_page.rs in the global setup); the
// app's API is answered here, so the test decides when a run moves on, and sees every request
// the page makes.
const fs = require('node:fs');
const { test, expect } = require('@playwright/test');
const { reports } = require('./helpers');

const ORIGIN = 'https://patreport.test';
const KEY = 'k3y/+=';
const RUN = '20261129-190000-00112233445566ff';
const OLD = '20261128-060000-aabbccddeeff0011';
const HOSTILE = '<img src=x onerror="window.__pwned=1">\u202Egnp.exe</script>';

function status(state, extra) {
  return { runId: RUN, org: 'contoso', state, requestedBy: 'Ada Admin', requestedAt: '2026-11-29T19:00:00Z', ...extra };
}

// The API as the app answers it; `finished` is the latch that lets the run succeed.
async function fakeApp(page) {
  const calls = [];
  const refused = [];
  const app = { calls, refused, finished: false, started: false };
  const html = fs.readFileSync(reports().startPage, 'utf8');
  const policy = reports().startPolicy;
  await page.context().route('**/*', async (route) => {
    const request = route.request();
    const url = new URL(request.url());
    const json = (status, body) => route.fulfill({ status, contentType: 'application/json', body: JSON.stringify(body) });
    if (url.origin !== ORIGIN) {
      refused.push(request.url());
      return route.abort();
    }
    calls.push({ method: request.method(), path: url.pathname, org: url.searchParams.get('org'), code: url.searchParams.get('code') });
    if (url.pathname === '/api/PatReport/ui') {
      return route.fulfill({
        status: 200,
        contentType: 'text/html; charset=utf-8',
        headers: { 'content-security-policy': policy },
        body: html,
      });
    }
    if (url.pathname === '/api/PatReport' && request.method() === 'POST') {
      if (app.refuseStart) return json(403, app.refuseStart);
      app.started = true;
      return json(202, { runId: RUN, org: url.searchParams.get('org'), state: 'queued' });
    }
    if (url.pathname === `/api/PatReport/runs/${RUN}`) {
      // The platform's own 401 (a session that expired) has no body.
      if (app.signedOut) return route.fulfill({ status: 401, body: '' });
      return json(200, app.finished
        ? status('succeeded', { summary: { complete: true, usersListed: 10, usersRead: 10, pats: 7 } })
        : status('running', { progress: { usersListed: 10, usersRead: 3, patsFound: 7, throttled: 2, throttleWaitSeconds: 5 } }));
    }
    if (url.pathname === '/api/PatReport/runs') {
      const runs = [
        status('succeeded', { runId: OLD, org: 'fabrikam', requestedBy: HOSTILE, summary: { pats: 3, usersRead: 2 } }),
        // A run id that is not one: never made into a link, whatever its state.
        status('succeeded', { runId: 'javascript:alert(1)', org: 'fabrikam', requestedBy: 'x' }),
        status('failed', { runId: '20261127-060000-0000000000000001', org: 'fabrikam', error: HOSTILE }),
      ];
      if (app.started) runs.unshift(app.finished ? status('succeeded') : status('running'));
      return json(200, { runs });
    }
    return json(404, { error: 'not_found' });
  });
  return app;
}

test('start a report, follow it, open it; recent runs are shown as text', async ({ page }) => {
  const app = await fakeApp(page);
  const dialogs = [];
  const errors = [];
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  page.on('pageerror', (e) => errors.push(e.message));
  await page.addInitScript(() => {
    const violations = [];
    Object.defineProperty(window, '__cspViolations', { value: violations });
    document.addEventListener('securitypolicyviolation', (e) => violations.push(`${e.violatedDirective} ${e.sample}`));
  });
  await page.goto(`${ORIGIN}/api/PatReport/ui?code=${encodeURIComponent(KEY)}`);

  // The configured organizations, and the recent runs, hostile text inert.
  await expect(page.locator('#org option')).toHaveText(['fabrikam', 'contoso']);
  const rows = page.locator('#runs tr');
  await expect(rows).toHaveCount(3);
  await expect(rows.nth(0)).toContainText(HOSTILE);
  await expect(rows.nth(2)).toContainText(HOSTILE);
  await expect(rows.nth(0).locator('a')).toHaveAttribute('href', `/api/PatReport/runs/${OLD}/view?code=${encodeURIComponent(KEY)}`);
  await expect(rows.nth(1).locator('a')).toHaveCount(0);
  await expect(rows.nth(2).locator('a')).toHaveCount(0);

  // Start one for contoso: it is followed while it runs...
  await page.locator('#org').selectOption('contoso');
  await page.locator('#start').click();
  const current = page.locator('#current');
  await expect(current).toContainText('3 of 10 users read');
  await expect(current).toContainText('7 PATs found');
  await expect(current).toContainText('throttled 2 times (5 s waiting)');
  await expect(page.locator('#start')).toBeDisabled();
  await expect(current.locator('a')).toHaveCount(0);
  // ...and links to its page once it has succeeded.
  app.finished = true;
  await expect(current.locator('a')).toHaveAttribute('href', `/api/PatReport/runs/${RUN}/view?code=${encodeURIComponent(KEY)}`);
  await expect(current).toContainText('7 PATs of 10 users read');
  await expect(page.locator('#start')).toBeEnabled();
  await expect(rows).toHaveCount(4);

  const posts = app.calls.filter((c) => c.method === 'POST');
  expect(posts).toEqual([{ method: 'POST', path: '/api/PatReport', org: 'contoso', code: KEY }]);
  expect(app.calls.every((c) => c.code === KEY), 'the key goes on to every call').toBe(true);
  expect(app.refused, 'no request left the app').toEqual([]);
  expect(dialogs).toEqual([]);
  expect(errors).toEqual([]);
  const inPage = await page.evaluate(() => ({
    pwned: typeof window.__pwned,
    violations: window.__cspViolations.slice(),
    foreign: document.querySelectorAll('img, iframe, object, embed, form').length,
  }));
  expect(inPage).toEqual({ pwned: 'undefined', violations: [], foreign: 0 });
});

test('a refused start says why and lets the person try again', async ({ page }) => {
  const app = await fakeApp(page);
  app.refuseStart = { error: 'forbidden', message: `${HOSTILE} lacks PatReport.Read` };
  await page.goto(`${ORIGIN}/api/PatReport/ui`);
  await page.locator('#start').click();
  await expect(page.locator('#current')).toHaveText(`Not started: ${HOSTILE} lacks PatReport.Read`);
  await expect(page.locator('#start')).toBeEnabled();
  expect(app.calls.filter((c) => c.method === 'POST')).toEqual([
    { method: 'POST', path: '/api/PatReport', org: 'fabrikam', code: null },
  ]);
  expect(app.calls.every((c) => c.code === null), 'no key when the page was opened without one').toBe(true);
  expect(await page.evaluate(() => typeof window.__pwned)).toBe('undefined');
});

test('a run the app stops answering about is not followed forever', async ({ page }) => {
  const app = await fakeApp(page);
  await page.goto(`${ORIGIN}/api/PatReport/ui`);
  await page.locator('#start').click();
  await expect(page.locator('#current')).toContainText('3 of 10 users read');
  app.signedOut = true;
  await expect(page.locator('#current')).toContainText('the app refused to say how it is going (401)');
  await expect(page.locator('#start')).toBeEnabled();
  await expect(page.locator('#current a')).toHaveCount(0);
});
