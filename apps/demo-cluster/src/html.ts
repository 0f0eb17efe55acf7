/**
 * `GET /`: a plain HTML page listing the nodes, refreshed every second, with buttons that call
 * the cluster API (kill, restart, isolate, heal, transfer leadership) and a small KV form.
 */
import type { ClusterView } from './supervisor.js';

function esc(v: unknown): string {
  return String(v ?? '–').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Renders the page for one cluster view. */
export function renderPage(view: ClusterView): string {
  const rows = view.nodes
    .map((n) => {
      const state = !n.alive ? 'down' : n.isolated ? 'isolated' : 'up';
      const btn = (action: string, label: string) =>
        `<button onclick="act('/api/nodes/${encodeURIComponent(n.id)}/${action}')">${label}</button>`;
      return `<tr class="${state}${n.id === view.leader ? ' leader' : ''}">
  <td>${esc(n.id)}</td><td>${state}</td><td>${esc(n.role)}</td><td>${esc(n.membership)}</td><td>${esc(n.term)}</td>
  <td>${esc(n.leader)}</td><td>${esc(n.commitIndex)}</td><td>${esc(n.appliedIndex)}</td><td>${esc(n.lastIndex)}</td>
  <td>${esc(n.keys)}</td><td>${esc(n.pid)}</td><td>${esc(n.address)}</td>
  <td>${n.alive ? btn('kill', 'kill') : btn('restart', 'restart')} ${n.alive ? (n.isolated ? btn('heal', 'heal') : btn('isolate', 'isolate')) : ''} ${
    n.alive && !n.isolated && n.membership === 'voter' && n.id !== view.leader ? btn('transfer-leadership', 'make leader') : ''
  }</td>
</tr>`;
    })
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>synod demo (${esc(view.protocol)})</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; }
tr.leader { background: #e6ffe6; font-weight: bold; }
tr.down { color: #999; background: #f4f4f4; }
tr.isolated { background: #fff4e0; }
#out { white-space: pre-wrap; font-family: monospace; }
</style>
</head>
<body>
<h1>synod demo</h1>
<p>Protocol: <b id="protocol">${esc(view.protocol)}</b>. Leader: <b id="leader">${esc(view.leader ?? 'none')}</b>.
Voters: ${esc(view.voters.join(', ') || '–')}. Learners: ${esc(view.learners.join(', ') || '–')}.</p>
<table id="nodes">
<thead><tr><th>id</th><th>state</th><th>role</th><th>membership</th><th>term</th><th>leader</th><th>commitIndex</th><th>appliedIndex</th><th>lastIndex</th><th>keys</th><th>pid</th><th>address</th><th>actions</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
<h2>Key-value</h2>
<form onsubmit="kv(event)">
<input id="key" placeholder="key" required> <input id="value" placeholder="value">
<button name="op" value="PUT">put</button> <button name="op" value="GET">get</button> <button name="op" value="DELETE">delete</button>
</form>
<p id="out"></p>
<p>JSON: <a href="/api/cluster">/api/cluster</a>. This page reloads every 2 seconds.</p>
<script>
let timer = setTimeout(() => location.reload(), 2000);
async function act(path) {
  clearTimeout(timer);
  const r = await fetch(path, { method: 'POST' });
  document.getElementById('out').textContent = r.status + ' ' + await r.text();
  timer = setTimeout(() => location.reload(), 1500);
}
async function kv(ev) {
  ev.preventDefault();
  clearTimeout(timer);
  const op = ev.submitter.value;
  const key = encodeURIComponent(document.getElementById('key').value);
  const init = { method: op };
  if (op === 'PUT') init.body = document.getElementById('value').value;
  const r = await fetch('/kv/' + key, init);
  document.getElementById('out').textContent = op + ' ' + r.status + ' ' + await r.text();
}
</script>
</body>
</html>
`;
}
