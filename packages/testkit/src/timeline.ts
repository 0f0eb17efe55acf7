/**
 * A self-contained HTML timeline of a history (one lane per client, one bar per operation from
 * invocation to completion), with nemesis actions as markers and the operations a failed
 * linearizability check could not place highlighted — the picture Porcupine and Jepsen draw.
 */
import type { KvOperation } from './kv-model.js';
import { describeKvOperation } from './kv-model.js';

/** What to draw. */
export interface TimelineInput {
  /** Page title, e.g. `raft seed 42: not linearizable`. */
  readonly title: string;
  /** Lines shown under the title (verdict, replay command...). */
  readonly notes?: readonly string[];
  readonly history: readonly KvOperation[];
  /** `[virtual ms, description]` markers. */
  readonly events?: ReadonlyArray<readonly [number, string]>;
  /** Ids of operations to highlight (e.g. the candidates of a linearizability failure). */
  readonly highlight?: ReadonlySet<number>;
  /** Ids of operations of a partial linearization, drawn with their rank. */
  readonly linearized?: readonly number[];
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Renders a standalone HTML page (inline SVG and CSS, no scripts or external resources). */
export function renderTimeline(input: TimelineInput): string {
  const ops = input.history;
  const finite = ops.flatMap((o) => [o.callTime, Number.isFinite(o.returnTime) ? o.returnTime : o.callTime]);
  for (const [t] of input.events ?? []) finite.push(t);
  const t0 = finite.length ? Math.min(...finite) : 0;
  const t1 = finite.length ? Math.max(...finite) + 1 : 1;
  const clients = [...new Set(ops.map((o) => o.client))].sort((a, b) => a - b);
  const lane = new Map(clients.map((c, i) => [c, i]));
  const width = Math.max(1200, Math.min(40000, (t1 - t0) * 4));
  const left = 70;
  const laneH = 34;
  const top = 30;
  const height = top + clients.length * laneH + 20;
  const x = (t: number) => left + ((t - t0) / (t1 - t0)) * (width - left - 10);
  const rank = new Map((input.linearized ?? []).map((id, i) => [id, i + 1]));
  const parts: string[] = [];
  // Time axis.
  const step = niceStep((t1 - t0) / 20);
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
    parts.push(`<line x1="${x(t)}" y1="${top - 5}" x2="${x(t)}" y2="${height - 15}" class="grid"/><text x="${x(t) + 2}" y="${top - 8}" class="axis">${t} ms</text>`);
  }
  for (const [i, c] of clients.entries()) {
    parts.push(`<text x="4" y="${top + i * laneH + 20}" class="lane">client ${c}</text>`);
  }
  for (const [t, what] of input.events ?? []) {
    parts.push(`<line x1="${x(t)}" y1="${top}" x2="${x(t)}" y2="${height - 15}" class="event"><title>${esc(`${t} ms: ${what}`)}</title></line>`);
  }
  for (const o of ops) {
    const y = top + lane.get(o.client)! * laneH + 4;
    const end = Number.isFinite(o.returnTime) ? o.returnTime : t1;
    const w = Math.max(2, x(end) - x(o.callTime));
    const cls = [o.status, o.status === 'unknown' && Number.isFinite(o.returnTime) ? 'resolved' : '', input.highlight?.has(o.id) ? 'hl' : ''].join(' ');
    const label = describeKvOperation(o);
    const r = rank.get(o.id);
    const text = `${r ? `#${r} ` : ''}${label}`;
    parts.push(
      `<g><rect x="${x(o.callTime)}" y="${y}" width="${w}" height="${laneH - 8}" rx="3" class="${cls}"/>` +
        `<text x="${x(o.callTime) + 3}" y="${y + 17}" class="op">${esc(text.length * 6 > w ? text.slice(0, Math.max(0, Math.floor(w / 6))) : text)}</text>` +
        `<title>${esc(`op ${o.id} ${label}\ncall ${o.callTime} ms, return ${Number.isFinite(o.returnTime) ? `${o.returnTime} ms` : '∞'}${o.node ? `\nvia ${o.node}` : ''}${o.error ? `\n${o.error}` : ''}`)}</title></g>`,
    );
  }
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${esc(input.title)}</title>
<style>
body{font:13px system-ui,sans-serif;margin:16px;color:#222}
h1{font-size:18px;margin:0 0 6px} .notes{white-space:pre-wrap;font-family:ui-monospace,monospace;background:#f6f6f6;padding:8px;border-radius:4px}
.wrap{overflow-x:auto;border:1px solid #ddd;margin-top:10px}
.grid{stroke:#eee} .axis{font-size:10px;fill:#888} .lane{font-size:11px;fill:#555}
.event{stroke:#b07cd8;stroke-dasharray:3 3;stroke-width:1.5}
rect.ok{fill:#cfe8cf;stroke:#5a9a5a} rect.fail{fill:#eee;stroke:#aaa} rect.unknown{fill:#fff3c4;stroke:#c9a400;stroke-dasharray:4 2}
rect.resolved{stroke-dasharray:none} rect.hl{stroke:#d00;stroke-width:3}
.op{font-size:11px;fill:#222;pointer-events:none}
.legend span{display:inline-block;padding:1px 6px;margin-right:8px;border:1px solid}
</style></head><body>
<h1>${esc(input.title)}</h1>
${input.notes?.length ? `<div class="notes">${esc(input.notes.join('\n'))}</div>` : ''}
<p class="legend"><span style="background:#cfe8cf;border-color:#5a9a5a">ok</span><span style="background:#fff3c4;border-color:#c9a400">unknown (timeout/crash)</span><span style="background:#eee;border-color:#aaa">failed (did not happen)</span><span style="border-color:#d00">could not be linearized</span><span style="border-color:#b07cd8">nemesis action (hover)</span> #n = position in the longest linearization found</p>
<div class="wrap"><svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join('')}</svg></div>
</body></html>
`;
}

function niceStep(raw: number): number {
  if (raw <= 1) return 1;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}
