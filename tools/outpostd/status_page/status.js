// outpostd's status page: polls /status.json once a second and fills the page. Everything from the server is
// put in as text (textContent), never as markup: stream names are the app's bytes.
'use strict';

const REFRESH_MS = 1000;
const SERIES = [
  {key: 'ops_applied', color: '#2f6fd6'},
  {key: 'pushes', color: '#d9822b'},
  {key: 'pulls', color: '#2e9e5b'},
];
let updates = 0;

function $(id) {
  return document.getElementById(id);
}

function setText(id, value) {
  const el = $(id);
  if (el) el.textContent = value === undefined || value === null ? '–' : String(value);
}

function count(n) {
  if (n === undefined || n === null) return '–';
  return Number(n).toLocaleString('en-US');
}

function bytes(n) {
  if (n === undefined || n === null) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return (i === 0 ? v.toFixed(0) : v.toFixed(1)) + ' ' + units[i];
}

function seconds(s) {
  if (s === undefined || s === null) return '–';
  if (s < 1e-3) return (s * 1e6).toFixed(0) + ' µs';
  if (s < 1) return (s * 1e3).toFixed(1) + ' ms';
  return s.toFixed(2) + ' s';
}

function duration(s) {
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  return 'up ' + (d ? d + 'd ' : '') + (d || h ? h + 'h ' : '') + m + 'm ' + (s % 60) + 's';
}

// The per-second rate of history[key] over the last `span` samples.
function rate(history, key, span) {
  const t = history.t_ms || [], v = history[key];
  if (t.length < 2 || !v) return 0;
  const last = t.length - 1, first = Math.max(0, last - span);
  const dt = (t[last] - t[first]) / 1000;
  return dt > 0 ? Math.max(0, (v[last] - v[first]) / dt) : 0;
}

function fillRows(tableId, rows) {
  const body = $(tableId).tBodies[0];
  const fresh = document.createElement('tbody');
  for (const row of rows) {
    const tr = document.createElement('tr');
    if (row.hot) tr.className = 'hot';
    for (const cell of row.cells) {
      const td = document.createElement('td');
      td.textContent = cell.text;
      if (cell.cls) td.className = cell.cls;
      if (cell.title) td.title = cell.title;
      tr.appendChild(td);
    }
    fresh.appendChild(tr);
  }
  body.replaceWith(fresh);
}

function drawChart(history) {
  const canvas = $('chart');
  const ctx = canvas.getContext('2d');
  const w = canvas.width, h = canvas.height, pad = 28;
  ctx.clearRect(0, 0, w, h);
  // Per-second deltas of each series.
  const t = history.t_ms || [];
  const points = SERIES.map(() => []);
  for (let i = 1; i < t.length; i++) {
    const dt = (t[i] - t[i - 1]) / 1000;
    SERIES.forEach((s, k) => {
      const v = history[s.key];
      points[k].push(dt > 0 && v ? Math.max(0, (v[i] - v[i - 1]) / dt) : 0);
    });
  }
  // The axis ends at a round number (1, 2 or 5 times a power of ten) above the highest point.
  let top = 0;
  for (const p of points)
    for (const v of p) top = Math.max(top, v);
  let max = 1;
  while (max < top)
    max = [2, 5, 10].map((f) => f * Math.pow(10, Math.floor(Math.log10(max)))).find((m) => m > max);
  ctx.strokeStyle = '#eef0f4';
  ctx.fillStyle = '#5a6372';
  ctx.font = '11px sans-serif';
  for (let g = 0; g <= 4; g++) {
    const y = pad / 2 + (h - pad) * g / 4;
    ctx.beginPath();
    ctx.moveTo(pad + 20, y);
    ctx.lineTo(w - 4, y);
    ctx.stroke();
    ctx.fillText(String(+(max * (4 - g) / 4).toFixed(2)), 2, y + 4);
  }
  const n = 600;  // ten minutes of samples
  SERIES.forEach((s, k) => {
    const p = points[k];
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    p.forEach((v, i) => {
      const x = pad + 20 + (w - pad - 24) * (n - p.length + i) / n;
      const y = pad / 2 + (h - pad) * (1 - v / max);
      if (i === 0)
        ctx.moveTo(x, y);
      else
        ctx.lineTo(x, y);
    });
    ctx.stroke();
  });
  ctx.fillStyle = '#5a6372';
  ctx.fillText('-10 min', pad + 20, h - 2);
  ctx.fillText('now', w - 26, h - 2);
}

function render(s) {
  const cur = s.current || {};
  const history = s.history || {};
  setText('version', 'v' + s.version);
  setText('state', s.state);
  $('state').className = 'pill ' + (s.state === 'running' ? 'ok' : 'bad');
  setText('uptime', duration(s.uptime_s || 0));
  setText(
      'where',
      'store ' + s.store + ' · devices connect to ' + s.endpoint +
          (s.media_url ? ' · uploads at ' + s.media_url : ''));
  setText('connections', count(cur.connections));
  setText('devices-online', count(cur.devices_online));
  setText('ops-applied', count(cur.ops_applied));
  setText('pushes', count(cur.pushes));
  setText('pulls', count(cur.pulls));
  setText('commits', count(cur.commits));
  setText('bytes-in', bytes(cur.bytes_in));
  setText('bytes-out', bytes(cur.bytes_out));
  setText('ops-rate', rate(history, 'ops_applied', 5).toFixed(1));
  setText('pushes-rate', rate(history, 'pushes', 5).toFixed(1));
  setText('pulls-rate', rate(history, 'pulls', 5).toFixed(1));
  const commit = s.commit_seconds || {};
  setText('commit-p50', commit.count ? seconds(commit.p50) : '–');
  setText('commit-p99', commit.count ? seconds(commit.p99) : '–');

  const q = s.queues || {};
  fillRows(
      'queues', Object.keys(q).map((k) => ({
                                     cells: [
                                       {text: k.replace(/_/g, ' ')},
                                       {text: k.endsWith('bytes') ? bytes(q[k]) : count(q[k]), cls: 'num'}
                                     ],
                                   })));

  // Errors: the change over the last five minutes, and the total since start.
  const errors = s.errors || {};
  fillRows(
      'errors',
      Object.keys(errors).map((k) => ({
                                hot: errors[k].recent > 0,
                                cells: [
                                  {text: k.replace(/_/g, ' ')}, {text: count(errors[k].recent), cls: 'num'},
                                  {text: count(errors[k].total), cls: 'num'}
                                ],
                              })));

  const now = s.now_ms || Date.now();
  fillRows(
      'streams',
      (s.streams ||
       []).map((st) => ({
                 cells: [
                   {text: st.stream, cls: 'stream', title: st.stream},
                   {text: count(st.ops_applied), cls: 'num'},
                   {text: count(st.last_seq), cls: 'num'},
                   {text: Math.max(0, Math.round((now - st.last_applied_ms) / 1000)) + ' s ago', cls: 'num'},
                 ],
               })));
  drawChart(history);
  updates++;
  setText('updates', updates);
  document.body.dataset.updates = String(updates);
}

function showError(text) {
  const el = $('js-error');
  el.textContent = text;
  el.hidden = false;
}

async function poll() {
  let status;
  try {
    const response = await fetch('/status.json', {credentials: 'same-origin', cache: 'no-store'});
    if (!response.ok) throw new Error('/status.json: HTTP ' + response.status);
    status = await response.json();
    setText('link', 'live');
    $('link').className = 'pill ok';
  } catch (e) {
    setText('link', 'cannot reach the server: ' + e.message);
    $('link').className = 'pill bad';
  }
  // A fault of the page itself is shown as one, not taken for the server being away.
  try {
    if (status) render(status);
  } catch (e) {
    showError('page error: ' + e.message);
  }
  setTimeout(poll, REFRESH_MS);
}

window.addEventListener('error', (e) => showError('page error: ' + e.message));
poll();
