/**
 * A self-contained HTML timeline of a history (one lane per client, one bar per operation from
 * invocation to completion), with nemesis actions as markers, the operations a failed
 * linearizability check could not place highlighted and the moment of a violation marked — the
 * picture Porcupine and Jepsen draw.
 */
import type { NodeId } from '@synod/log';
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
  /**
   * The violation to mark: a vertical line with `label` at `time` (virtual ms); the page scrolls
   * to it when it opens. With `node`, the operations served through that replica and the
   * nemesis actions that name it are highlighted too.
   */
  readonly marker?: TimelineMarker;
  /**
   * Lane names by client id (default `client <id>`), e.g. the simulator's final reads, which it
   * records as client number `clients`.
   */
  readonly laneLabels?: ReadonlyMap<number, string>;
}

/** A moment to mark on a timeline (see {@link TimelineInput.marker}). */
export interface TimelineMarker {
  /** Virtual ms. */
  readonly time: number;
  /** Shown next to the line, e.g. `vote-durability (n4)`. */
  readonly label: string;
  /** The replica involved, if one. */
  readonly node?: NodeId;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * Renders a standalone HTML page: inline SVG and CSS, and one inline script that scrolls to the
 * marker when the page opens; no external resources. One lane per client that has an operation
 * in `history` (lanes in client order).
 */
export function renderTimeline(input: TimelineInput): string {
  const ops = input.history;
  const finite = ops.flatMap((o) => [o.callTime, Number.isFinite(o.returnTime) ? o.returnTime : o.callTime]);
  for (const [t] of input.events ?? []) finite.push(t);
  if (input.marker) finite.push(input.marker.time);
  const t0 = finite.length ? Math.min(...finite) : 0;
  const t1 = finite.length ? Math.max(...finite) + 1 : 1;
  // One lane per client that has an operation here, in client order.
  const clients = [...new Set(ops.map((o) => o.client))].sort((a, b) => a - b);
  const lane = new Map(clients.map((c, i) => [c, i]));
  const width = Math.max(1200, Math.min(40000, (t1 - t0) * 4));
  const left = 10;
  const laneH = 34;
  // A row above the axis for the marker's label.
  const top = input.marker ? 48 : 30;
  const height = top + clients.length * laneH + 20;
  const x = (t: number) => left + ((t - t0) / (t1 - t0)) * (width - left - 10);
  const rank = new Map((input.linearized ?? []).map((id, i) => [id, i + 1]));
  const parts: string[] = [];
  // Time axis.
  const step = niceStep((t1 - t0) / 20);
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
    parts.push(`<line x1="${x(t)}" y1="${top - 5}" x2="${x(t)}" y2="${height - 15}" class="grid"/><text x="${x(t) + 2}" y="${top - 8}" class="axis">${t} ms</text>`);
  }
  // Lane names, in a column that stays put while the timeline scrolls.
  const laneNames = clients.map(
    (c, i) => `<text x="4" y="${top + i * laneH + 21}" class="lane" data-client="${c}">${esc(input.laneLabels?.get(c) ?? `client ${c}`)}</text>`,
  );
  const markedNode = input.marker?.node;
  const namesNode = markedNode === undefined ? () => false : (what: string) => new RegExp(`(^|[^\\w-])${escapeRegExp(markedNode)}($|[^\\w-])`).test(what);
  for (const [t, what] of input.events ?? []) {
    parts.push(`<line x1="${x(t)}" y1="${top}" x2="${x(t)}" y2="${height - 15}" class="event${namesNode(what) ? ' node' : ''}"><title>${esc(`${t} ms: ${what}`)}</title></line>`);
  }
  // The marker goes under the operations, so an operation at its time stays visible.
  let markerX = 0;
  if (input.marker) {
    const m = input.marker;
    markerX = x(m.time);
    const text = `${m.time} ms: ${m.label}`;
    // The label goes right of the line, or left of it when it would run past the end.
    const anchor = markerX + 4 + text.length * 7 > width ? 'end' : 'start';
    parts.push(
      `<g id="violation" class="violation" data-time="${m.time}"${m.node !== undefined ? ` data-node="${esc(m.node)}"` : ''} data-x="${markerX}">` +
        `<line x1="${markerX}" y1="6" x2="${markerX}" y2="${height - 15}"/>` +
        `<text x="${anchor === 'start' ? markerX + 5 : markerX - 5}" y="17" text-anchor="${anchor}">${esc(text)}</text>` +
        `<title>${esc(`violation at ${m.time} ms: ${m.label}`)}</title></g>`,
    );
  }
  for (const o of ops) {
    const y = top + lane.get(o.client)! * laneH + 4;
    const end = Number.isFinite(o.returnTime) ? o.returnTime : t1;
    const hl = input.highlight?.has(o.id) ?? false;
    // A highlighted operation is drawn wide enough to be seen even when it took no time.
    const w = Math.max(hl ? 10 : 2, x(end) - x(o.callTime));
    const cls = [o.status, o.status === 'unknown' && Number.isFinite(o.returnTime) ? 'resolved' : '', markedNode !== undefined && o.node === markedNode ? 'node' : '', hl ? 'hl' : '']
      .filter(Boolean)
      .join(' ');
    const label = describeKvOperation(o);
    const r = rank.get(o.id);
    const text = `${r ? `#${r} ` : ''}${label}`;
    parts.push(
      `<g><rect x="${x(o.callTime)}" y="${y}" width="${w}" height="${laneH - 8}" rx="3" class="${cls}" data-op="${o.id}"/>` +
        `<text x="${x(o.callTime) + 3}" y="${y + 17}" class="op">${esc(text.length * 6 > w ? text.slice(0, Math.max(0, Math.floor(w / 6))) : text)}</text>` +
        `<title>${esc(`op ${o.id} ${label}\ncall ${o.callTime} ms, return ${Number.isFinite(o.returnTime) ? `${o.returnTime} ms` : '∞'}${o.node ? `\nvia ${o.node}` : ''}${o.error ? `\n${o.error}` : ''}`)}</title></g>`,
    );
  }
  const nodeLegend =
    markedNode !== undefined
      ? `<span style="border-color:#1565c0;border-width:2px">through ${esc(markedNode)} / nemesis action naming ${esc(markedNode)}</span>`
      : '';
  const markerLegend = input.marker ? `<span style="border-color:#d00;border-width:0 0 0 3px">violation at ${input.marker.time} ms</span>` : '';
  // Opens the page at the marker (a third of the way in from the left).
  const script = input.marker
    ? `<script>addEventListener('load',function(){var w=document.querySelector('.wrap'),m=document.getElementById('violation');if(w&&m)w.scrollLeft=Math.max(0,Number(m.getAttribute('data-x'))-w.clientWidth/3);});</script>\n`
    : '';
  const laneW = Math.max(70, 12 + 7 * Math.max(0, ...clients.map((c) => (input.laneLabels?.get(c) ?? `client ${c}`).length)));
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${esc(input.title)}</title>
<style>
body{font:13px system-ui,sans-serif;margin:16px;color:#222}
h1{font-size:18px;margin:0 0 6px} .notes{white-space:pre-wrap;font-family:ui-monospace,monospace;background:#f6f6f6;padding:8px;border-radius:4px}
.timeline{display:flex;border:1px solid #ddd;margin-top:10px} .lanes{flex:none;border-right:1px solid #ddd;background:#fafafa}
.wrap{overflow-x:auto;flex:1}
.grid{stroke:#eee} .axis{font-size:10px;fill:#888} .lane{font-size:11px;fill:#555}
.event{stroke:#b07cd8;stroke-dasharray:3 3;stroke-width:1.5} .event.node{stroke:#1565c0;stroke-width:3}
.violation line{stroke:#d00;stroke-width:3;opacity:.7} .violation text{font-size:12px;font-weight:bold;fill:#d00}
rect.ok{fill:#cfe8cf;stroke:#5a9a5a} rect.fail{fill:#eee;stroke:#aaa} rect.unknown{fill:#fff3c4;stroke:#c9a400;stroke-dasharray:4 2}
rect.resolved{stroke-dasharray:none} rect.node{stroke:#1565c0;stroke-width:2} rect.hl{stroke:#d00;stroke-width:3}
.op{font-size:11px;fill:#222;pointer-events:none}
.legend span{display:inline-block;padding:1px 6px;margin-right:8px;border:1px solid}
</style></head><body>
<h1>${esc(input.title)}</h1>
${input.notes?.length ? `<div class="notes">${esc(input.notes.join('\n'))}</div>` : ''}
<p class="legend"><span style="background:#cfe8cf;border-color:#5a9a5a">ok</span><span style="background:#fff3c4;border-color:#c9a400">unknown (timeout/crash)</span><span style="background:#eee;border-color:#aaa">failed (did not happen)</span><span style="border-color:#d00">could not be linearized</span><span style="border-color:#b07cd8">nemesis action (hover)</span>${markerLegend}${nodeLegend} #n = position in the longest linearization found</p>
<div class="timeline"><svg class="lanes" xmlns="http://www.w3.org/2000/svg" width="${laneW}" height="${height}">${laneNames.join('')}</svg><div class="wrap"><svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join('')}</svg></div></div>
${script}</body></html>
`;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function niceStep(raw: number): number {
  if (raw <= 1) return 1;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}
