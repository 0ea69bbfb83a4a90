// The start page of the Functions app (GET /api/PatReport/ui): start a report, watch it run,
// open it, and see the recent runs. Everything from the API is put in as text; links are
// built here from run ids that match the run id pattern, never taken from the data.
'use strict';
(function () {
  const RUN_ID = /^[0-9]{8}-[0-9]{6}-[0-9a-f]{16}$/;
  const config = JSON.parse(document.getElementById('ui-data').textContent);
  const key = new URLSearchParams(location.search).get('code');
  // The function key the page was opened with, if any, goes on to the API calls.
  const api = (path) => key ? path + (path.includes('?') ? '&' : '?') + 'code=' + encodeURIComponent(key) : path;
  const $ = (id) => document.getElementById(id);
  const text = (el, value) => { el.textContent = value == null ? '' : String(value); return el; };
  const make = (tag, value) => text(document.createElement(tag), value);
  const viewLink = (runId) => {
    if (!RUN_ID.test(runId)) return null;
    const a = make('a', 'Open the report');
    a.setAttribute('href', api('/api/PatReport/runs/' + runId + '/view'));
    return a;
  };

  const select = $('org');
  for (const org of config.orgs) select.appendChild(make('option', org));

  function describe(status) {
    const p = status.progress || {};
    const parts = [status.state];
    if (status.state === 'running' || status.state === 'queued') {
      parts.push((p.usersRead ?? 0) + ' of ' + (p.usersListed ?? 0) + ' users read');
      parts.push((p.patsFound ?? 0) + ' PATs found');
      if (p.throttled) parts.push('throttled ' + p.throttled + ' times (' + (p.throttleWaitSeconds ?? 0) + ' s waiting)');
    }
    if (status.summary) parts.push(status.summary.pats + ' PATs of ' + (status.summary.usersRead ?? status.summary.usersScanned) + ' users read');
    if (status.error) parts.push(status.error);
    if (status.message) parts.push(status.message);
    return parts.join(' · ');
  }

  // An answer's JSON body, or null when there is none (an empty 401 from the platform, a
  // sign-in page the policy did not let through).
  async function body(answer) {
    try { return await answer.json(); } catch (e) { return null; }
  }

  // Follows a run until it ends, or until the app refuses or stops answering: a person
  // then sees why, and the button is free again.
  async function watch(runId) {
    const out = $('current');
    const say = (what) => out.replaceChildren(make('span', 'Run ' + runId + ': ' + what));
    say('asked for…');
    let failures = 0;
    for (;;) {
      let answer = null;
      let status = null;
      try {
        answer = await fetch(api('/api/PatReport/runs/' + runId), { credentials: 'same-origin', cache: 'no-store' });
        status = await body(answer);
      } catch (e) {
        answer = null;
      }
      if (answer && answer.ok && status) {
        failures = 0;
        say(describe(status));
        if (status.state === 'succeeded') {
          const link = viewLink(runId);
          if (link) out.append(' ', link);
          recent();
          return;
        }
        if (status.state === 'failed' || status.state === 'stalled') {
          recent();
          return;
        }
      } else if (answer && answer.status !== 503 && answer.status !== 429) {
        // Refused (signed out, no longer allowed) or gone: polling again will not help.
        say('the app refused to say how it is going (' + answer.status + (status && status.message ? ': ' + status.message : '') +
          '); reload the page to sign in again');
        return;
      } else if (++failures >= 5) {
        say('the app has not answered five times in a row; reload the page to look again');
        return;
      } else {
        say('the app is not answering; trying again…');
      }
      await new Promise((r) => setTimeout(r, failures ? 4000 : 2000));
    }
  }

  $('start').addEventListener('click', async () => {
    const button = $('start');
    button.disabled = true;
    try {
      const answer = await fetch(api('/api/PatReport?org=' + encodeURIComponent(select.value)), {
        method: 'POST', credentials: 'same-origin',
      });
      const started = await body(answer);
      if (!answer.ok || !started || !RUN_ID.test(started.runId || '')) {
        text($('current'), 'Not started: ' + ((started && (started.message || started.reason)) || answer.status));
      } else {
        await watch(started.runId);
      }
    } catch (e) {
      text($('current'), 'Not started: the app is not answering (' + e.message + ')');
    } finally {
      button.disabled = false;
    }
  });

  async function recent() {
    const rows = $('runs');
    try {
      const answer = await fetch(api('/api/PatReport/runs'), { credentials: 'same-origin', cache: 'no-store' });
      const list = await body(answer);
      if (!answer.ok || !list) {
        text(rows, 'The recent runs could not be read (' + answer.status + (list && list.message ? ': ' + list.message : '') + ')');
        return;
      }
      rows.replaceChildren();
      for (const run of list.runs || []) {
        const tr = document.createElement('tr');
        for (const value of [run.requestedAt, run.org, run.requestedBy, describe(run)]) tr.appendChild(make('td', value));
        const cell = document.createElement('td');
        const link = run.state === 'succeeded' ? viewLink(run.runId) : null;
        if (link) cell.appendChild(link);
        tr.appendChild(cell);
        rows.appendChild(tr);
      }
      if (!rows.children.length) rows.appendChild(make('tr', 'No runs yet.'));
    } catch (e) {
      text(rows, 'The recent runs could not be read: ' + e.message);
    }
  }
  recent();
})();
