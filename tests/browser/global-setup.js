// Makes the reports the browser tests open, with the real binary (the debug build that
// `cargo build` or `cargo test` leaves; PATREPORT_BIN overrides it): the demo organization,
// with its hostile names and revoked PATs listed, and an incomplete report (a time budget
// too short for the simulated latency, so some users are never reached); and the Functions
// app's start page.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');

function make(bin, out, name, args, exitCodes) {
  const dir = path.join(out, name);
  try {
    execFileSync(
      bin,
      ['report', '--demo', '--demo-no-faults', '--quiet', '--out', dir, '--format', 'csv,json,html', ...args],
      { stdio: 'pipe' },
    );
  } catch (error) {
    if (!exitCodes.includes(error.status)) {
      throw new Error(`patreport report ${name} failed (${error.status}): ${error.stderr}`);
    }
  }
  const files = fs.readdirSync(dir);
  const pick = (ext) => path.join(dir, files.find((f) => f.endsWith(`.${ext}`)));
  return { html: pick('html'), json: pick('json'), csv: pick('csv') };
}

module.exports = async function globalSetup() {
  const bin = process.env.PATREPORT_BIN || path.join(root, 'target', 'debug', 'patreport');
  if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: build it first (cargo build)`);
  const out = path.join(root, 'target', 'browser-tests');
  fs.rmSync(out, { recursive: true, force: true });
  const reports = {
    demo: make(bin, out, 'demo', ['--include-invalid'], [0]),
    incomplete: make(
      bin,
      out,
      'incomplete',
      ['--demo-users', '300', '--demo-latency', '30ms', '--time-budget', '400ms'],
      [3],
    ),
  };
  // The Functions app's start page, as the app serves it (examples/start_page.rs, which
  // `cargo build --examples` builds, as scripts/test.sh does).
  const example = path.join(path.dirname(bin), 'examples', 'start_page');
  if (!fs.existsSync(example)) throw new Error(`${example} is missing: build it first (cargo build --examples)`);
  reports.startPage = path.join(out, 'start.html');
  fs.writeFileSync(reports.startPage, execFileSync(example, ['fabrikam', 'contoso']));
  reports.startPolicy = execFileSync(example, ['--policy']).toString();
  fs.writeFileSync(path.join(out, 'reports.json'), JSON.stringify(reports, null, 2));
};
