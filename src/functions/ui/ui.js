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

  async function watch(runId) {
    const out = $('current');
    out.replaceChildren(make('span', 'Run ' + runId + ': asked for…'));
    for (;;) {
      let status;
      try {
        const answer = await fetch(api('/api/PatReport/runs/' + runId), { credentials: 'same-origin', cache: 'no-store' });
        status = await answer.json();
      } catch (e) {
        out.replaceChildren(make('span', 'Run ' + runId + ': the app is not answering (' + e.message + '); retrying…'));
        await new Promise((r) => setTimeout(r, 4000));
        continue;
      }
      out.replaceChildren(make('span', 'Run ' + runId + ': ' + describe(status)));
      if (status.state === 'succeeded') {
        const link = viewLink(runId);
        if (link) out.append(' ', link);
        recent();
        return;
      }
      if (status.state === 'failed' || status.state === 'stalled' || status.error === 'not_found') {
        recent();
        return;
      }
      await new Promise((r) => setTimeout(r, 2000));
    }
  }

  $('start').addEventListener('click', async () => {
    const button = $('start');
    button.disabled = true;
    try {
      const answer = await fetch(api('/api/PatReport?org=' + encodeURIComponent(select.value)), {
        method: 'POST', credentials: 'same-origin',
      });
      const body = await answer.json();
      if (!answer.ok || !RUN_ID.test(body.runId || '')) {
        text($('current'), 'Not started: ' + (body.message || body.reason || answer.status));
      } else {
        await watch(body.runId);
      }
    } finally {
      button.disabled = false;
    }
  });

  async function recent() {
    const body = $('runs');
    try {
      const answer = await fetch(api('/api/PatReport/runs'), { credentials: 'same-origin', cache: 'no-store' });
      const list = await answer.json();
      body.replaceChildren();
      for (const run of list.runs || []) {
        const tr = document.createElement('tr');
        for (const value of [run.requestedAt, run.org, run.requestedBy, describe(run)]) tr.appendChild(make('td', value));
        const cell = document.createElement('td');
        const link = run.state === 'succeeded' ? viewLink(run.runId) : null;
        if (link) cell.appendChild(link);
        tr.appendChild(cell);
        body.appendChild(tr);
      }
      if (!body.children.length) body.appendChild(make('tr', 'No runs yet.'));
    } catch (e) {
      text(body, 'The recent runs could not be read: ' + e.message);
    }
  }
  recent();
})();
