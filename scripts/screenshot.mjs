#!/usr/bin/env node
// Makes docs/view.png, the README's picture of the HTML view: writes the demo organization's
// report with the real binary (target/debug/patreport, or PATREPORT_BIN; build it first) and
// photographs it at 1400 x 900 in headless Chromium (Debian's /usr/bin/chromium, or
// PATREPORT_CHROMIUM).
//
// Usage: node scripts/screenshot.mjs [OUT.png]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
const { chromium } = require('@playwright/test');

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = process.env.PATREPORT_BIN || path.join(root, 'target', 'debug', 'patreport');
const out = path.resolve(process.argv[2] ?? path.join(root, 'docs', 'view.png'));
if (!fs.existsSync(bin)) {
  console.error(`${bin} is missing: build it first (cargo build)`);
  process.exit(1);
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'patreport-screenshot-'));
try {
  execFileSync(bin, ['report', '--demo', '--demo-no-faults', '--quiet', '--format', 'html', '--out', dir], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const html = fs.readdirSync(dir).find((f) => f.endsWith('.html'));
  const browser = await chromium.launch({ executablePath: process.env.PATREPORT_CHROMIUM || '/usr/bin/chromium' });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(pathToFileURL(path.join(dir, html)).href);
    await page.locator('#rows tr.row').first().waitFor();
    await page.screenshot({ path: out });
  } finally {
    await browser.close();
  }
  console.log(`wrote ${path.relative(process.cwd(), out)}`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
