// Browser tests of the HTML view (tests/browser/), in Debian's chromium: these machines
// cannot download Playwright's own browser build (see scripts/test.sh, which installs it).
// The reports under test are made by the real binary in the global setup.
const { defineConfig } = require('@playwright/test');

module.exports = defineConfig({
  testDir: 'tests/browser',
  globalSetup: require.resolve('./tests/browser/global-setup.js'),
  outputDir: 'test-results',
  timeout: 60_000,
  workers: 2,
  reporter: [['list']],
  use: {
    launchOptions: { executablePath: process.env.PATREPORT_CHROMIUM || '/usr/bin/chromium' },
    viewport: { width: 1400, height: 900 },
    acceptDownloads: true,
  },
});
