// The report view: reads the data embedded in the page and renders the summary cards, the
// token table, the errors and the run details.
//
// Every name in the data comes from the organization and is untrusted. It is rendered with
// textContent and createElement only, attributes are set by fixed names, and nothing from
// the data becomes a URL. The page's Content-Security-Policy (no network, Trusted Types)
// makes any slip fail instead of running. The table keeps only the rows in view in the DOM:
// at 100,000 rows, sorting and filtering work on precomputed arrays of row numbers.
'use strict';

(function () {
  const ROW_H = 44; // --row-h in view.css
  const DETAIL_H = 168; // --detail-h in view.css
  const OVERSCAN = 6;
  const MAX_ERRORS_SHOWN = 1000;
  const STATUSES = ['active', 'expiring', 'expired', 'invalid'];
  const STATUS_LABEL = { active: 'active', expiring: 'expiring', expired: 'expired', invalid: 'invalid (revoked)' };

  const data = JSON.parse(document.getElementById('report-data').textContent);
  if (data.format !== 'patreport-view/1') {
    document.getElementById('shown').textContent = 'This page cannot read its data (format ' + String(data.format) + ').';
    return;
  }
  const run = data.run;
  const summary = data.summary;
  const n = data.rows;
  const number = new Intl.NumberFormat('en');
  const collator = new Intl.Collator(undefined, { sensitivity: 'base', numeric: true });

  // ---- Columns of the data ------------------------------------------------------------

  const columns = new Map();
  for (const column of data.columns) {
    // An index given as a column's key is that (earlier) column's index array.
    if (typeof column.index === 'string') column.index = columns.get(column.index).index;
    columns.set(column.key, column);
  }
  function col(key) {
    const column = columns.get(key);
    if (!column) throw new Error('the report has no column ' + key);
    return column;
  }
  function value(column, i) {
    return column.index ? column.values[column.index[i]] : column.values[i];
  }

  const C = {
    owner: col('owner_display_name'),
    principal: col('owner_principal_name'),
    mail: col('owner_mail_address'),
    origin: col('owner_origin'),
    descriptor: col('owner_descriptor'),
    name: col('pat_name'),
    status: col('status'),
    full: col('full_access'),
    global: col('global'),
    summary: col('scope_summary'),
    scope: col('scope'),
    targets: col('target_accounts'),
    from: col('valid_from'),
    to: col('valid_to'),
    days: col('days_to_expiry'),
    lifetime: col('lifetime_days'),
    id: col('authorization_id'),
    severity: col('severity'),
    findings: col('findings'),
  };
  const SEVERITIES = ['critical', 'high', 'medium', 'low'];
  const RULES = new Map((data.rules || []).map(function (r) { return [r.code, r]; }));
  function findingLabels(i) {
    return value(C.findings, i).map(function (code) { const r = RULES.get(code); return r ? r.label : code; });
  }

  // Per-row facts the filters read at every keystroke, computed once.
  const statusCode = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const code = STATUSES.indexOf(value(C.status, i));
    statusCode[i] = code < 0 ? STATUSES.length : code;
  }
  const flagOf = { full_access: C.full, global: C.global };
  const statusCount = STATUSES.map(function (_, code) {
    let count = 0;
    for (let i = 0; i < n; i++) if (statusCode[i] === code) count++;
    return count;
  });
  function flagCount(key) {
    const column = flagOf[key];
    let count = 0;
    for (let i = 0; i < n; i++) if (value(column, i) === 1) count++;
    return count;
  }

  // ---- Text helpers -------------------------------------------------------------------

  // Characters that hide or reorder text (bidi overrides, zero-width, controls): shown as
  // a visible code so that a name cannot pass for another.
  const HIDDEN = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F\u061C\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]/g;

  function putText(el, text) {
    text = text == null ? '' : String(text);
    HIDDEN.lastIndex = 0;
    if (!HIDDEN.test(text)) {
      el.textContent = text;
      return;
    }
    el.textContent = '';
    let last = 0;
    HIDDEN.lastIndex = 0;
    for (let m = HIDDEN.exec(text); m !== null; m = HIDDEN.exec(text)) {
      if (m.index > last) el.append(document.createTextNode(text.slice(last, m.index)));
      const mark = document.createElement('span');
      mark.className = 'ctl';
      mark.setAttribute('title', 'hidden control character');
      mark.textContent = 'U+' + m[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
      el.append(mark);
      last = m.index + m[0].length;
    }
    if (last < text.length) el.append(document.createTextNode(text.slice(last)));
  }

  function make(tag, className, text) {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (text !== undefined) putText(el, text);
    return el;
  }

  // A date as the CSV writes it: RFC 3339, UTC, whole seconds.
  function dateText(date) {
    if (date == null) return '';
    if (Array.isArray(date)) return date[1];
    return new Date(date * 1000).toISOString().replace('.000Z', 'Z');
  }
  function dateShort(date) {
    if (date == null) return '';
    if (Array.isArray(date)) return date[1];
    return dateText(date).slice(0, 10);
  }
  function seconds(date) {
    return Array.isArray(date) ? date[0] : date;
  }
  function relative(days) {
    if (days == null) return 'no expiry';
    if (days === 0) return 'today';
    const a = Math.abs(days);
    let span;
    if (a < 60) span = a + (a === 1 ? ' day' : ' days');
    else if (a < 730) span = Math.round(a / 30.44) + ' months';
    else span = (a / 365.25).toFixed(1).replace(/\.0$/, '') + ' years';
    return days > 0 ? 'in ' + span : span + ' ago';
  }
  function plural(count, one, many) {
    return number.format(count) + ' ' + (count === 1 ? one : many);
  }

  // ---- Header, banner, summary note ---------------------------------------------------

  document.getElementById('title').textContent = 'PAT report: ' + run.org;
  document.getElementById('read-at').textContent =
    'Data read ' + run.started.replace('T', ' ').replace('Z', ' UTC') + ' to ' +
    run.finished.replace('T', ' ').replace('Z', ' UTC') + '; statuses and days as of ' +
    run.generated.replace('T', ' ').replace('Z', ' UTC') + '.';
  document.getElementById('coverage').textContent =
    plural(summary.users_listed, 'user', 'users') + ' listed, ' + number.format(summary.users_read) + ' read, ' +
    plural(summary.users_failed, 'error', 'errors') + '; ' +
    plural(summary.pats, 'PAT', 'PATs') + ' held by ' + plural(summary.users_with_pats, 'user', 'users') + '.';
  if (!run.complete) {
    const banner = document.getElementById('incomplete');
    let text = 'This report is incomplete: the tokens of ' + plural(summary.users_failed, 'user', 'users') +
      ' could not be read (see Errors).';
    if (run.stopped_early) text += ' The scan stopped early: ' + (run.stop_reason || 'no reason recorded');
    putText(banner, text);
    banner.hidden = false;
  }
  const notes = [];
  const unlisted = summary.by_status.invalid - statusCount[3];
  if (unlisted > 0) {
    notes.push(plural(unlisted, 'revoked PAT is', 'revoked PATs are') +
      ' counted but not listed (the report was made without --include-invalid).');
  }
  if (flagCount('global') > 0) {
    notes.push('Global PATs stop working on 1 December 2026: replace them with PATs scoped to one organization.');
  }
  document.getElementById('summary-note').textContent = notes.join(' ');

  // ---- Filters and cards --------------------------------------------------------------

  // severity: '' (any row), or the index in SEVERITIES of the least severe finding shown.
  const state = { status: '', severity: '', flags: new Set(), query: '', sort: 'expires', dir: 'ascending' };
  const severityCode = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const k = SEVERITIES.indexOf(value(C.severity, i));
    severityCode[i] = k < 0 ? SEVERITIES.length : k;
  }

  // A card shows a count and sets a filter when clicked (again: clears it). More cards
  // (findings) are more entries of this list.
  function statusCard(status, label, hint) {
    return {
      id: 'status-' + status, label: label, hint: hint, className: 'status-' + status,
      count: function () { return statusCount[STATUSES.indexOf(status)]; },
      pressed: function () { return state.status === status; },
      toggle: function () { state.status = state.status === status ? '' : status; },
    };
  }
  function flagCard(flag, label, hint) {
    return {
      id: 'flag-' + flag, label: label, hint: hint, className: 'flag',
      count: function () { return flagCount(flag); },
      pressed: function () { return state.flags.has(flag); },
      toggle: function () { if (!state.flags.delete(flag)) state.flags.add(flag); },
    };
  }
  const CARDS = [
    statusCard('active', 'Active', 'valid, not expiring soon'),
    statusCard('expiring', 'Expiring', 'within ' + plural(run.expiring_days, 'day', 'days')),
    statusCard('expired', 'Expired', 'past their end date'),
    statusCard('invalid', 'Revoked', 'status invalid'),
    flagCard('full_access', 'Full access', 'scope app_token'),
    flagCard('global', 'Global', 'every organization'),
  ].filter(function (card) { return card.id !== 'status-invalid' || card.count() > 0; });

  const cardsEl = document.getElementById('cards');
  const cardButtons = CARDS.map(function (card) {
    const button = make('button', 'card ' + card.className);
    button.type = 'button';
    button.setAttribute('data-card', card.id);
    button.setAttribute('aria-pressed', 'false');
    button.append(make('span', 'count', number.format(card.count())), make('span', 'label', card.label),
      make('span', 'hint', card.hint));
    button.addEventListener('click', function () { card.toggle(); update(); });
    cardsEl.append(button);
    return button;
  });

  const statusSelect = document.getElementById('status-filter');
  statusSelect.append(new Option('All', ''));
  STATUSES.forEach(function (status, code) {
    if (statusCount[code] > 0 || status !== 'invalid') statusSelect.append(new Option(STATUS_LABEL[status], status));
  });
  statusSelect.addEventListener('change', function () { state.status = statusSelect.value; update(); });
  const severitySelect = document.getElementById('severity-filter');
  severitySelect.addEventListener('change', function () { state.severity = severitySelect.value; update(); });
  const flagBoxes = {};
  Object.keys(flagOf).forEach(function (flag) {
    const box = document.getElementById('only-' + flag);
    flagBoxes[flag] = box;
    box.addEventListener('change', function () {
      if (box.checked) state.flags.add(flag); else state.flags.delete(flag);
      update();
    });
  });
  const search = document.getElementById('search');
  search.addEventListener('input', function () { state.query = search.value; update(); });
  search.addEventListener('keydown', function (event) {
    if (event.key === 'Escape' && search.value) { search.value = ''; state.query = ''; update(); }
  });
  document.getElementById('clear').addEventListener('click', function () {
    state.status = ''; state.severity = ''; state.flags.clear(); state.query = ''; search.value = '';
    update();
  });

  function syncControls() {
    statusSelect.value = state.status;
    severitySelect.value = state.severity;
    Object.keys(flagBoxes).forEach(function (flag) { flagBoxes[flag].checked = state.flags.has(flag); });
    CARDS.forEach(function (card, k) { cardButtons[k].setAttribute('aria-pressed', String(card.pressed())); });
  }

  // Search: a case-insensitive substring of the owner, principal name, PAT name, scope (raw
  // or summary) or authorization id. A dictionary column is matched once per distinct value.
  const SEARCHED = [C.owner, C.principal, C.name, C.scope, C.summary, C.id];
  const lowered = new Map();
  function lowerValues(column) {
    let values = lowered.get(column);
    if (!values) {
      values = column.values.map(function (v) { return v == null ? '' : String(v).toLowerCase(); });
      lowered.set(column, values);
    }
    return values;
  }

  // Which rows pass the filters, or null when every row does.
  function filterMask() {
    const query = state.query.trim().toLowerCase();
    const status = state.status === '' ? -1 : STATUSES.indexOf(state.status);
    const flags = Array.from(state.flags, function (flag) { return flagOf[flag]; });
    const worst = state.severity === '' ? -1 : Number(state.severity);
    if (query === '' && status < 0 && worst < 0 && flags.length === 0) return null;
    const mask = new Uint8Array(n);
    let tests = null;
    if (query !== '') {
      tests = SEARCHED.map(function (column) {
        const values = lowerValues(column);
        if (!column.index) return { plain: values };
        const hit = new Uint8Array(values.length);
        for (let k = 0; k < values.length; k++) hit[k] = values[k].includes(query) ? 1 : 0;
        return { hit: hit, index: column.index };
      });
    }
    rows: for (let i = 0; i < n; i++) {
      if (status >= 0 && statusCode[i] !== status) continue;
      if (worst >= 0 && severityCode[i] > worst) continue;
      for (let f = 0; f < flags.length; f++) if (value(flags[f], i) !== 1) continue rows;
      if (tests) {
        let found = false;
        for (let t = 0; t < tests.length && !found; t++) {
          const test = tests[t];
          found = test.plain ? test.plain[i].includes(query) : test.hit[test.index[i]] === 1;
        }
        if (!found) continue;
      }
      mask[i] = 1;
    }
    return mask;
  }

  // ---- Sorting ------------------------------------------------------------------------

  // Ranks of a text column's values, null last: in reading order (the collator, "sync 2"
  // before "sync 10") for names, in plain code-unit order for ids or beyond 20,000 distinct
  // values, where the collator would take too long.
  function textRanks(column, ids) {
    const values = column.index ? column.values : Array.from(new Set(column.values));
    const readable = !ids && values.length <= 20000;
    const sorted = values.slice().sort(function (a, b) {
      if (a == null || b == null) return (a == null) - (b == null);
      return (readable ? collator.compare(a, b) : 0) || (a < b ? -1 : a > b ? 1 : 0);
    });
    const rank = new Map();
    sorted.forEach(function (v, k) { rank.set(v, k); });
    if (column.index) {
      const byIndex = new Float64Array(values.length);
      for (let k = 0; k < values.length; k++) byIndex[k] = rank.get(values[k]);
      return function (i) { return byIndex[column.index[i]]; };
    }
    return function (i) { return rank.get(column.values[i]); };
  }

  // The sortable table columns: what each shows, and its sort key (null sorts last).
  const VIEW = [
    { id: 'detail', label: 'Details', hidden: true },
    { id: 'owner', label: 'Owner', first: 'ascending',
      key: function () {
        const byName = textRanks(C.owner); const byPrincipal = textRanks(C.principal);
        return function (i) { return byName(i) * 1e6 + byPrincipal(i); };
      } },
    { id: 'pat_name', label: 'PAT name', first: 'ascending',
      key: function () {
        const rank = textRanks(C.name);
        return function (i) { return value(C.name, i) == null ? null : rank(i); };
      } },
    { id: 'status', label: 'Status', first: 'ascending',
      key: function () { return function (i) { return statusCode[i]; }; } },
    { id: 'severity', label: 'Severity', first: 'ascending',
      key: function () {
        return function (i) { const k = SEVERITIES.indexOf(value(C.severity, i)); return k < 0 ? null : k; };
      } },
    { id: 'expires', label: 'Expires', first: 'ascending',
      key: function () { return function (i) { const d = value(C.to, i); return d == null ? null : seconds(d); }; } },
    { id: 'full_access', label: 'Full access', first: 'descending',
      key: function () { return function (i) { return value(C.full, i); }; } },
    { id: 'global', label: 'Global', first: 'descending',
      key: function () { return function (i) { return value(C.global, i); }; } },
    { id: 'scope_summary', label: 'Scope', first: 'ascending', key: function () { return textRanks(C.summary); } },
    { id: 'lifetime', label: 'Lifetime (days)', first: 'descending',
      key: function () { return function (i) { return value(C.lifetime, i); }; } },
    { id: 'authorization_id', label: 'Authorization id', first: 'ascending', key: function () { return textRanks(C.id, true); } },
  ];
  const VIEW_BY_ID = new Map(VIEW.map(function (v) { return [v.id, v]; }));

  // Sorted row numbers per column, ascending, rows without a value last: computed on first
  // use and kept, so sorting again or filtering never sorts again.
  const orders = new Map();
  function orderOf(id) {
    let order = orders.get(id);
    if (order) return order;
    const keyOf = VIEW_BY_ID.get(id).key();
    const keys = new Float64Array(n);
    const valued = [];
    const empty = [];
    for (let i = 0; i < n; i++) {
      const key = keyOf(i);
      if (key == null) empty.push(i);
      else { keys[i] = key; valued.push(i); }
    }
    valued.sort(function (a, b) { return keys[a] - keys[b] || a - b; });
    order = { rows: Int32Array.from(valued.concat(empty)), valued: valued.length };
    orders.set(id, order);
    return order;
  }

  // ---- The table ----------------------------------------------------------------------

  const scroller = document.getElementById('scroller');
  const tbody = document.getElementById('rows');
  const table = document.getElementById('tokens');
  const head = document.getElementById('head');
  const colgroup = document.getElementById('cols');
  const shown = document.getElementById('shown');
  const noRows = document.getElementById('no-rows');
  const printNote = document.getElementById('print-note');

  const headers = new Map();
  head.setAttribute('aria-rowindex', '1');
  VIEW.forEach(function (v) {
    const colEl = document.createElement('col');
    colEl.className = 'c-' + v.id;
    colgroup.append(colEl);
    const th = make('th');
    th.setAttribute('scope', 'col');
    if (v.hidden) {
      th.append(make('span', 'visually-hidden', v.label));
    } else {
      const button = make('button', null, v.label);
      button.type = 'button';
      button.setAttribute('data-sort', v.id);
      button.append(make('span', 'arrow'));
      button.addEventListener('click', function () {
        if (state.sort === v.id) state.dir = state.dir === 'ascending' ? 'descending' : 'ascending';
        else { state.sort = v.id; state.dir = v.first; }
        update();
      });
      th.append(button);
    }
    headers.set(v.id, th);
    head.append(th);
  });

  function syncHeaders() {
    headers.forEach(function (th, id) {
      const arrow = th.querySelector('.arrow');
      if (id === state.sort) {
        th.setAttribute('aria-sort', state.dir);
        if (arrow) arrow.textContent = state.dir === 'ascending' ? '▲' : '▼';
      } else {
        th.removeAttribute('aria-sort');
        if (arrow) arrow.textContent = '';
      }
    });
  }

  let view = new Int32Array(0); // row numbers shown, in order
  let expanded = -1; // the row whose detail is open
  let expandedAt = -1; // its position in view
  let drawn = null; // [first, last) positions currently in the DOM

  function computeView() {
    const order = orderOf(state.sort);
    const mask = filterMask();
    const out = new Int32Array(n);
    let m = 0;
    const rows = order.rows;
    if (state.dir === 'ascending') {
      for (let k = 0; k < n; k++) { const i = rows[k]; if (!mask || mask[i]) out[m++] = i; }
    } else {
      for (let k = order.valued - 1; k >= 0; k--) { const i = rows[k]; if (!mask || mask[i]) out[m++] = i; }
      for (let k = order.valued; k < n; k++) { const i = rows[k]; if (!mask || mask[i]) out[m++] = i; }
    }
    view = out.subarray(0, m);
    expandedAt = expanded < 0 ? -1 : view.indexOf(expanded);
  }

  function offsetOf(pos) {
    return pos * ROW_H + (expandedAt >= 0 && pos > expandedAt ? DETAIL_H : 0);
  }
  function positionAt(y) {
    let pos;
    if (expandedAt < 0 || y < (expandedAt + 1) * ROW_H) pos = Math.floor(y / ROW_H);
    else if (y < (expandedAt + 1) * ROW_H + DETAIL_H) pos = expandedAt;
    else pos = Math.floor((y - DETAIL_H) / ROW_H);
    return Math.max(0, Math.min(view.length, pos));
  }

  function spacer(height) {
    const tr = make('tr', 'spacer');
    tr.setAttribute('aria-hidden', 'true');
    const td = make('td');
    td.colSpan = VIEW.length;
    tr.append(td);
    td.style.height = height + 'px'; // CSSOM, which the policy allows; style attributes it would not
    return tr;
  }

  function flagCell(td, on) {
    td.append(make('span', on ? 'yes' : 'no', on ? 'yes' : 'no'));
  }

  const CELLS = {
    detail: function (td, i) {
      const button = make('button', 'toggle', expanded === i ? '▾' : '▸');
      button.type = 'button';
      button.setAttribute('data-action', 'detail');
      button.setAttribute('aria-expanded', String(expanded === i));
      button.setAttribute('aria-label', 'Details');
      td.append(button);
    },
    owner: function (td, i) {
      const name = value(C.owner, i);
      const principal = value(C.principal, i);
      td.append(make('div', 'primary', name), make('div', 'secondary', principal));
      td.setAttribute('title', name + '\n' + principal);
    },
    pat_name: function (td, i) {
      const name = value(C.name, i);
      if (name == null) td.append(make('span', 'muted', '(no name)'));
      else { putText(td, name); td.setAttribute('title', name); }
    },
    status: function (td, i) {
      const status = value(C.status, i);
      td.append(make('span', 'badge ' + (STATUSES.includes(status) ? status : ''), status));
    },
    severity: function (td, i) {
      const severity = value(C.severity, i);
      if (severity == null) return;
      td.append(make('span', 'badge sev-' + (SEVERITIES.includes(severity) ? severity : 'unknown'), severity));
      td.setAttribute('title', findingLabels(i).join('\n'));
    },
    expires: function (td, i) {
      const to = value(C.to, i);
      td.append(make('div', 'primary', relative(value(C.days, i))), make('div', 'secondary', dateShort(to)));
      if (to != null) td.setAttribute('title', 'Valid to ' + dateText(to) + ' (UTC)');
    },
    full_access: function (td, i) { flagCell(td, value(C.full, i) === 1); },
    global: function (td, i) { flagCell(td, value(C.global, i) === 1); },
    scope_summary: function (td, i) {
      const text = value(C.summary, i);
      putText(td, text);
      td.setAttribute('title', text);
    },
    lifetime: function (td, i) {
      const days = value(C.lifetime, i);
      td.className += ' num';
      putText(td, days == null ? '' : number.format(days));
    },
    authorization_id: function (td, i) {
      // The button first: a long id may be cut at the cell's end, the button never.
      const copy = make('button', 'copy', 'Copy');
      copy.type = 'button';
      copy.setAttribute('data-action', 'copy');
      copy.setAttribute('aria-label', 'Copy authorization id');
      td.append(copy, make('span', 'id', value(C.id, i)));
    },
  };

  function makeRow(i, pos) {
    const tr = make('tr', expanded === i ? 'row open' : 'row');
    tr.setAttribute('data-row', String(i));
    tr.setAttribute('aria-rowindex', String(pos + 2));
    for (const v of VIEW) {
      const td = make('td', 'c-' + v.id);
      CELLS[v.id](td, i);
      tr.append(td);
    }
    return tr;
  }

  function detailLine(dl, term, text) {
    dl.append(make('dt', null, term), make('dd', null, text));
  }

  function makeDetail(i) {
    const tr = make('tr', 'detail');
    tr.setAttribute('data-detail', String(i));
    const td = make('td');
    td.colSpan = VIEW.length;
    const box = make('div', 'detail-box');
    box.setAttribute('role', 'group');
    box.setAttribute('aria-label', 'Details');
    const dl = make('dl');
    const targets = value(C.targets, i);
    const findings = value(C.findings, i).map(function (code) {
      const r = RULES.get(code);
      return r ? r.label + ' (' + r.severity + '): ' + r.action : code;
    });
    detailLine(dl, 'Findings', findings.length ? findings.join('\n') : '(none)');
    detailLine(dl, 'Scope', value(C.scope, i));
    detailLine(dl, 'Target accounts', targets.length ? targets.join('\n') : 'none listed: all organizations (global)');
    detailLine(dl, 'User descriptor', value(C.descriptor, i));
    detailLine(dl, 'Mail, origin', value(C.mail, i) + ', ' + value(C.origin, i));
    detailLine(dl, 'Valid from', dateText(value(C.from, i)) || '(none)');
    detailLine(dl, 'Valid to', dateText(value(C.to, i)) || '(none)');
    const days = value(C.days, i);
    detailLine(dl, 'Days to expiry', days == null ? '(none)' : String(days));
    detailLine(dl, 'Authorization id', value(C.id, i));
    box.append(dl);
    td.append(box);
    tr.append(td);
    return tr;
  }

  // Lays out the rows in view (plus a few either side); does nothing if they are laid out.
  function render(force) {
    const top = scroller.scrollTop;
    const height = scroller.clientHeight || 600;
    const first = Math.max(0, positionAt(top) - OVERSCAN);
    const last = Math.min(view.length, positionAt(top + height) + OVERSCAN + 1);
    if (!force && drawn && drawn[0] === first && drawn[1] === last) return;
    // Keep keyboard focus on the same control of the same row across a redraw.
    const active = document.activeElement;
    let refocus = null;
    if (active && tbody.contains(active)) {
      const tr = active.closest('tr');
      refocus = { row: tr && tr.getAttribute('data-row'), action: active.getAttribute('data-action') };
    }
    const parts = [spacer(offsetOf(first))];
    for (let pos = first; pos < last; pos++) {
      const i = view[pos];
      parts.push(makeRow(i, pos));
      if (pos === expandedAt) parts.push(makeDetail(i));
    }
    parts.push(spacer(Math.max(0, offsetOf(view.length) - offsetOf(last))));
    tbody.replaceChildren.apply(tbody, parts);
    drawn = [first, last];
    printNote.textContent = view.length
      ? 'Printed: rows ' + number.format(first + 1) + ' to ' + number.format(last) + ' of the ' +
        number.format(view.length) + ' shown; the CSV download holds them all.'
      : '';
    if (refocus && refocus.row !== null) {
      const again = tbody.querySelector('tr[data-row="' + refocus.row + '"] [data-action="' + refocus.action + '"]');
      if (again) again.focus({ preventScroll: true });
    }
  }

  // Filters or sort changed: recompute the rows shown and lay them out from the top.
  function update() {
    computeView();
    syncControls();
    syncHeaders();
    table.setAttribute('aria-rowcount', String(view.length + 1));
    shown.textContent = view.length === n
      ? 'Showing all ' + plural(n, 'PAT', 'PATs')
      : 'Showing ' + number.format(view.length) + ' of ' + plural(n, 'PAT', 'PATs');
    noRows.hidden = view.length > 0 || n === 0;
    scroller.scrollTop = 0;
    render(true);
  }

  scroller.addEventListener('scroll', function () { render(false); }, { passive: true });
  window.addEventListener('resize', function () { render(false); });

  tbody.addEventListener('click', function (event) {
    const button = event.target.closest('button[data-action]');
    if (!button) return;
    const i = Number(button.closest('tr').getAttribute('data-row'));
    if (button.getAttribute('data-action') === 'detail') {
      expanded = expanded === i ? -1 : i;
      expandedAt = expanded < 0 ? -1 : view.indexOf(expanded);
      render(true);
    } else {
      copyId(button, value(C.id, i));
    }
  });

  function copyId(button, id) {
    const done = function (text) {
      button.textContent = text;
      setTimeout(function () { button.textContent = 'Copy'; }, 1500);
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(id).then(function () { done('Copied'); }, function () { selectId(button); done('Press Ctrl+C'); });
    } else {
      selectId(button);
      done('Press Ctrl+C');
    }
  }
  function selectId(button) {
    const span = button.parentElement.querySelector('.id');
    const range = document.createRange();
    range.selectNodeContents(span);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  // ---- CSV of the rows shown ----------------------------------------------------------

  // As the CSV writer: same headers and values; a text starting with = + - @ tab or CR gets
  // a leading quote so a spreadsheet shows it instead of evaluating it.
  function guard(text) {
    return /^[=+\-@\t\r]/.test(text) ? "'" + text : text;
  }
  function csvValue(column, i) {
    const v = value(column, i);
    switch (column.kind) {
      case 'text': return guard(v);
      case 'name': return guard(v == null ? '' : v);
      case 'status': return v;
      case 'flag': return v === 1 ? 'yes' : 'no';
      case 'targets': return v.length ? guard(v.join('; ')) : 'All organizations';
      case 'severity': return v == null ? '' : v;
      case 'findings': return findingLabels(i).join(', ');
      case 'date': return dateText(v);
      case 'days': return v == null ? '' : String(v);
      default: throw new Error('unknown column kind ' + column.kind);
    }
  }
  function csvField(text) {
    return /[",\r\n]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
  }
  function csvOfView() {
    const lines = [data.columns.map(function (c) { return csvField(c.header); }).join(',')];
    for (let pos = 0; pos < view.length; pos++) {
      const i = view[pos];
      lines.push(data.columns.map(function (c) { return csvField(csvValue(c, i)); }).join(','));
    }
    return lines.join('\n') + '\n';
  }
  // Hands `text` to the browser as a file named after the organization and `suffix`.
  function save(text, type, suffix) {
    const url = URL.createObjectURL(new Blob([text], { type: type }));
    const link = document.createElement('a');
    link.href = url; // our own blob, never a URL from the data
    link.download = 'patreport-' + String(run.org).replace(/[^A-Za-z0-9-]/g, '_') + suffix;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 60000);
  }
  document.getElementById('download').addEventListener('click', function () {
    save(csvOfView(), 'text/csv;charset=utf-8', '-shown.csv');
  });

  // ---- A revoke plan of the rows shown ---------------------------------------------------

  // The plan `patreport revoke --plan FILE` takes (dry run first, --yes to revoke): the page
  // never revokes anything itself. Revoked rows are left out.
  function revokePlanOfView() {
    const tokens = [];
    for (let pos = 0; pos < view.length; pos++) {
      const i = view[pos];
      if (value(C.status, i) === 'invalid') continue;
      tokens.push({
        authorization_id: value(C.id, i),
        owner_display_name: value(C.owner, i),
        owner_principal_name: value(C.principal, i),
        owner_descriptor: value(C.descriptor, i),
        pat_name: value(C.name, i),
        valid_to: value(C.to, i) == null ? null : dateText(value(C.to, i)),
        status: value(C.status, i),
        findings: value(C.findings, i),
      });
    }
    return {
      kind: 'patreport.revoke-plan/1',
      org: run.org,
      source_report: 'the HTML report of ' + run.org + ' read ' + run.finished,
      created: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      selection: 'the rows shown in the HTML view',
      tokens: tokens,
    };
  }
  document.getElementById('revoke-plan').addEventListener('click', function () {
    save(JSON.stringify(revokePlanOfView(), null, 2) + '\n', 'application/json', '-revoke-plan.json');
  });

  // ---- Errors and run details ---------------------------------------------------------

  const errorsNote = document.getElementById('errors-note');
  const errorsTable = document.getElementById('errors');
  if (data.errors.length === 0) {
    errorsNote.textContent = 'None: the tokens of every listed user were read.';
  } else {
    const body = errorsTable.tBodies[0];
    data.errors.slice(0, MAX_ERRORS_SHOWN).forEach(function (e) {
      const tr = make('tr');
      tr.append(make('td', null, e.user_display_name), make('td', null, e.user_principal_name),
        make('td', 'secondary', e.user_descriptor), make('td', 'num', e.http_status == null ? '' : String(e.http_status)),
        make('td', null, e.message));
      body.append(tr);
    });
    errorsNote.textContent = plural(data.errors.length, 'user', 'users') + ' whose tokens could not be read' +
      (data.errors.length > MAX_ERRORS_SHOWN ? ' (the first ' + number.format(MAX_ERRORS_SHOWN) + ' are shown; the JSON and the workbook list all).' : '.');
    errorsTable.hidden = false;
  }

  const runBody = document.getElementById('run').tBodies[0];
  [
    ['Organization', run.org],
    ['Started', run.started],
    ['Finished', run.finished],
    ['Duration', run.duration_seconds.toFixed(1) + ' s'],
    ['API calls', number.format(run.api_calls)],
    ['Retries', number.format(run.retries)],
    ['Throttled', plural(run.throttled, 'time', 'times') + ', ' + run.throttle_wait_seconds.toFixed(1) + ' s waiting'],
    ['Complete', run.complete ? 'yes' : 'no'],
    ['Stopped early', run.stopped_early ? (run.stop_reason || 'yes') : 'no'],
    ['Expiring window', plural(run.expiring_days, 'day', 'days')],
    ['Statuses as of', run.generated],
    ['Tool version', 'patreport ' + run.tool_version],
  ].forEach(function (pair) {
    const tr = make('tr');
    const th = make('th', null, pair[0]);
    th.setAttribute('scope', 'row');
    tr.append(th, make('td', null, pair[1]));
    runBody.append(tr);
  });

  update();

  // Lowercase the searched columns while the reader looks at the first rows, so the first
  // keystroke does not pay for it.
  setTimeout(function () { SEARCHED.forEach(lowerValues); }, 0);
})();
