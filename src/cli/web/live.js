// The live page of `patreport report --web`: polls /live.json for the scan's counts and the
// rows read so far, adds them to the table, and loads the finished report when it is written.
// Data is only ever put into the page as text (textContent), never parsed as markup.
'use strict';
(function () {
  const body = document.getElementById('rows');
  const status = document.getElementById('status');
  const columns = ['owner', 'principal', 'name', 'status', 'valid_to', 'scope'];
  let next = 0;
  function cell(row, text) {
    const td = document.createElement('td');
    td.textContent = text == null ? '' : String(text);
    row.appendChild(td);
  }
  function add(rows) {
    const fragment = document.createDocumentFragment();
    for (const r of rows) {
      const tr = document.createElement('tr');
      tr.className = 'status-' + (['active', 'expiring', 'expired', 'invalid'].includes(r.status) ? r.status : 'other');
      for (const c of columns) cell(tr, r[c]);
      fragment.appendChild(tr);
    }
    body.appendChild(fragment);
  }
  async function poll() {
    try {
      const answer = await fetch('/live.json?from=' + next, { cache: 'no-store' });
      const live = await answer.json();
      add(live.rows);
      next += live.rows.length;
      status.textContent = live.done
        ? 'Done: loading the report…'
        : (live.listed === 0 ? 'Waiting for the first page of users' :
          live.read + ' of ' + live.listed + ' users read, ' + live.failed + ' not read, ' +
          live.pats + ' PATs so far') + (live.waiting ? ' (' + live.waiting + ')' : '');
      document.body.dataset.done = String(live.done);
      document.body.dataset.rows = String(next);
      if (live.done) {
        location.reload();
        return;
      }
    } catch (e) {
      status.textContent = 'The scan is not answering (' + e.message + '); retrying…';
    }
    setTimeout(poll, 1000);
  }
  poll();
})();
