// The page's Content-Security-Policy is in force, and an incomplete report says so.
const { test, expect } = require('@playwright/test');
const { expectNothingEscaped, loadJson, openView, reports, shownCount } = require('./helpers');

test('an incomplete report has a banner, its errors and its rows', async ({ page }) => {
  const incomplete = reports().incomplete;
  const report = loadJson(incomplete.json);
  expect(report.run.complete).toBe(false);
  expect(report.errors.length).toBeGreaterThan(0);
  const seen = await openView(page, incomplete);
  const banner = page.locator('#incomplete');
  await expect(banner).toBeVisible();
  await expect(banner).toContainText('This report is incomplete');
  const n = new Intl.NumberFormat('en');
  await expect(banner).toContainText(`the tokens of ${n.format(report.summary.users_failed)} users could not be read`);
  if (report.run.stopped_early) await expect(banner).toContainText(report.run.stop_reason);
  await expect(page.locator('#errors tbody tr')).toHaveCount(Math.min(report.errors.length, 1000));
  await expect(page.locator('#errors tbody tr').first()).toContainText(report.errors[0].message);
  await expect(page.locator('#coverage')).toContainText(`${n.format(report.summary.users_failed)} errors`);
  await expect(page.locator('#run')).toContainText('Complete');
  expect(await shownCount(page)).toBe(report.rows.length);
  await expectNothingEscaped(page, seen);
});

test('the policy refuses markup, scripts and connections the page did not ship', async ({ page }) => {
  await openView(page, reports().demo);
  const outcome = await page.evaluate(async () => {
    const attempt = async (f) => {
      try {
        await f();
        return 'allowed';
      } catch (error) {
        return error.name;
      }
    };
    const box = document.createElement('div');
    document.body.append(box);
    return {
      innerHTML: await attempt(() => { box.innerHTML = '<img src=x onerror="window.__pwned=1">'; }),
      script: await attempt(() => {
        const script = document.createElement('script');
        script.textContent = 'window.__pwned = 1';
        document.body.append(script);
      }),
      fetch: await attempt(() => fetch('data:text/plain,x')),
      pwned: typeof window.__pwned,
    };
  });
  // Trusted Types turn HTML and script text into errors; connections are refused.
  expect(outcome).toEqual({ innerHTML: 'TypeError', script: 'TypeError', fetch: 'TypeError', pwned: 'undefined' });
  const violations = await page.evaluate(() => window.__cspViolations.map((v) => v.split(' ')[0]));
  expect(violations).toEqual(expect.arrayContaining(['require-trusted-types-for', 'connect-src']));
});
