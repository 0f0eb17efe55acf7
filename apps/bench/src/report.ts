/**
 * Rendering of a run: the Markdown report (with the SVG chart beside it) and the terminal
 * table. Both read only the JSON report, so a report can be re-rendered from `latest.json`.
 */
import Table from 'cli-table3';
import { fmtMs, fmtRate, fmtRatio, mdTable } from './format.js';
import { checkGoals } from './goals.js';
import { processLabel } from './profile.js';
import type { BenchReport, ResultRecord } from './schema.js';

/** Fields a result may carry beyond the required ones. */
export interface ResultExtras {
  readonly limit?: string | null;
  readonly cpuPct?: number;
  readonly peakRssMb?: number;
  readonly errors?: number;
  readonly limitedBy?: string;
  readonly persistsPerSec?: number;
  readonly entriesPerPersist?: number;
  readonly messagesPerOp?: number;
  readonly messagesPerFrame?: number;
  readonly profile?: {
    readonly file?: string;
    readonly owners: readonly { owner: string; share: number }[];
    readonly top: readonly { fn: string; location: string; share: number }[];
  }[];
}

const extras = (r: ResultRecord): ResultExtras => r as ResultRecord & ResultExtras;
const str = (v: unknown, d = '–') => (v === undefined || v === null ? d : String(v));

function resultRow(r: ResultRecord): string[] {
  const x = extras(r);
  return [
    r.protocol,
    r.transport,
    r.storage,
    String(r.nodes),
    String(r.clients),
    String(r.payloadBytes),
    fmtRate(r.opsPerSec),
    fmtMs(r.p50Ms),
    fmtMs(r.p99Ms),
    fmtMs(r.p999Ms),
    fmtRatio(r.ratioToLimit),
    str(x.limit),
    x.cpuPct === undefined ? '–' : `${Math.round(x.cpuPct)}%`,
    x.peakRssMb === undefined ? '–' : String(Math.round(x.peakRssMb)),
  ];
}

const RESULT_HEADER = ['protocol', 'transport', 'storage', 'nodes', 'clients', 'payload B', 'ops/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'of limit', 'limit', 'CPU', 'RSS MiB'];
const RESULT_ALIGN = ['l', 'l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l', 'r', 'r'] as const;

/** The results as a terminal table (cli-table3). */
export function renderTerminalTable(report: BenchReport): string {
  const t = new Table({ head: RESULT_HEADER, colAligns: RESULT_ALIGN.map((a) => (a === 'r' ? 'right' : 'left')), style: { head: ['cyan'] } });
  for (const r of report.results) t.push(resultRow(r));
  const parts = [t.toString()];
  if (report.baselines.length > 0) {
    const b = new Table({ head: ['baseline (physical limit)', 'per second'], colAligns: ['left', 'right'], style: { head: ['cyan'] } });
    for (const x of report.baselines) b.push([x.name, fmtRate(x.opsPerSec)]);
    parts.push(b.toString());
  }
  if (report.peers.length > 0) {
    const p = new Table({ head: ['peer', 'nodes', 'clients', 'ops/s', 'p99 ms'], colAligns: ['left', 'right', 'right', 'right', 'right'], style: { head: ['cyan'] } });
    for (const x of report.peers) p.push([x.name, String(x.nodes), String(x.clients), fmtRate(x.opsPerSec), fmtMs(x.p99Ms)]);
    parts.push(p.toString());
  }
  if (report.failover.length > 0) {
    const f = new Table({ head: ['failover', 'median ms', 'runs ms'], colAligns: ['left', 'right', 'left'], style: { head: ['cyan'] } });
    for (const x of report.failover) f.push([x.protocol, fmtMs(x.ms), ((x as { runsMs?: number[] }).runsMs ?? []).map((v) => fmtMs(v)).join(', ')]);
    parts.push(f.toString());
  }
  const goals = checkGoals(report);
  const g = new Table({ head: ['goal', 'target', 'measured', ''], style: { head: ['cyan'] } });
  for (const x of goals) g.push([x.goal, x.target, x.measured, x.met === null ? '–' : x.met ? 'met' : 'NOT met']);
  parts.push(g.toString());
  return parts.join('\n');
}

/** Options of {@link renderMarkdown}. */
export interface MarkdownOptions {
  /** Path of the chart relative to the Markdown file, or null for no chart. */
  readonly chartPath: string | null;
  /** Heading level of the title (1 = `#`). Default 1. */
  readonly headingLevel?: number;
}

/** The Markdown report of a run. */
export function renderMarkdown(report: BenchReport, o: MarkdownOptions): string {
  const h = (n: number) => '#'.repeat((o.headingLevel ?? 1) + n - 1);
  const m = report.machine;
  const lines: string[] = [];
  lines.push(`${h(1)} synod benchmark (${m.profile} profile)`, '');
  lines.push(`- **When:** ${m.date}`);
  lines.push(`- **Machine:** ${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB RAM, ${m.os}, Node ${m.node}`);
  const load = (m as { loadAvg?: number[] }).loadAvg;
  if (load) lines.push(`- **Load average at start:** ${load.map((x) => x.toFixed(2)).join(' / ')} (1 / 5 / 15 min)`);
  const settings = (m as { settings?: Record<string, unknown> }).settings;
  if (settings) lines.push(`- **Settings:** ${Object.entries(settings).map(([k, v]) => `${k} ${String(v)}`).join(', ')}`);
  lines.push(`- **Reproduce:** \`${m.command}\``, '');

  lines.push(`${h(2)} Goals`, '');
  lines.push(
    mdTable(
      ['goal', 'target', 'measured', 'status'],
      checkGoals(report).map((g) => [g.goal, g.target, g.measured, g.met === null ? 'not measured' : g.met ? 'met' : '**not met**']),
    ),
    '',
  );

  lines.push(`${h(2)} Results`, '');
  if (report.results.length === 0) lines.push('No cell was measured.', '');
  else {
    lines.push(mdTable(RESULT_HEADER, report.results.map(resultRow), RESULT_ALIGN), '');
    lines.push(
      '*of limit* is ops/s divided by the lowest physical limit that bounds the cell (see Baselines): the serial baselines for 1 client, the pipelined/batched ones otherwise. CPU is the cell\'s processes\' CPU time over the window as % of one core (this machine has ' +
        `${m.cpus}); RSS is the peak resident set (summed over processes for ws cells).`,
      '',
    );
  }
  if (o.chartPath) lines.push(`![Throughput against concurrent clients](${o.chartPath})`, '');

  const batched = report.results.filter((r) => extras(r).entriesPerPersist !== undefined);
  if (batched.length > 0) {
    lines.push(`${h(2)} Batching`, '');
    lines.push(
      mdTable(
        ['protocol', 'transport', 'storage', 'nodes', 'clients', 'payload B', 'persists/s (all replicas)', 'entries per persist', 'messages per op', 'messages per ws frame'],
        batched.map((r) => {
          const x = extras(r);
          return [r.protocol, r.transport, r.storage, String(r.nodes), String(r.clients), String(r.payloadBytes), fmtRate(x.persistsPerSec ?? 0), String(x.entriesPerPersist ?? '–'), String(x.messagesPerOp ?? '–'), x.messagesPerFrame === undefined ? '–' : String(x.messagesPerFrame)];
        }),
        ['l', 'l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
      ),
      '',
      'A persist is one `Storage.persist` call (one SQLite transaction and fsync with SQLite storage); entries per persist is the group commit the runtime achieved. Messages per op counts protocol messages of every replica per committed write.',
      '',
    );
  }

  lines.push(`${h(2)} Baselines (physical limits, same run)`, '');
  if (report.baselines.length === 0) lines.push('Not measured in this run.', '');
  else
    lines.push(
      mdTable(
        ['name', 'per second (best)', 'samples (before / after the cells)', 'unit', 'what'],
        report.baselines.map((b) => {
          const x = b as typeof b & { unit?: string; description?: string; samples?: number[] };
          return [b.name, fmtRate(b.opsPerSec), x.samples && x.samples.length > 1 ? x.samples.map(fmtRate).join(' / ') : '', str(x.unit, ''), str(x.description, '')];
        }),
        ['l', 'r', 'r', 'l', 'l'],
      ),
      '',
    );

  lines.push(`${h(2)} Peers (same run)`, '');
  if (report.peers.length === 0) lines.push('Not measured in this run.', '');
  else
    lines.push(
      mdTable(
        ['library', 'version', 'nodes', 'clients', 'ops/s', 'p50 ms', 'p99 ms', 'errors', 'setup'],
        report.peers.map((p) => {
          const x = p as typeof p & { version?: string; p50Ms?: number; errors?: number; setup?: string; internalErrors?: Record<string, number> };
          const internal = x.internalErrors ? Object.entries(x.internalErrors).map(([k, v]) => `${v} × ${k}`).join(', ') : '';
          const errors = str(x.errors) + (internal ? ` (+ unhandled inside the library: ${internal})` : '');
          return [p.name, str(x.version), String(p.nodes), String(p.clients), fmtRate(p.opsPerSec), x.p50Ms === undefined ? '–' : fmtMs(x.p50Ms), fmtMs(p.p99Ms), errors, str(x.setup, '')];
        }),
        ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
      ),
      '',
    );
  const unavailable = (report as { unavailablePeers?: { name: string; reason: string }[] }).unavailablePeers ?? [];
  if (unavailable.length > 0) {
    lines.push('Libraries looked at but not measured:', '');
    for (const u of unavailable) lines.push(`- \`${u.name}\`: ${u.reason}`);
    lines.push('');
  }

  lines.push(`${h(2)} Failover`, '');
  if (report.failover.length === 0) lines.push('Not measured in this run.', '');
  else
    lines.push(
      mdTable(
        ['protocol', 'median ms', 'runs (ms)', 'setup'],
        report.failover.map((f) => {
          const x = f as typeof f & { runsMs?: number[]; setup?: string };
          return [f.protocol, fmtMs(f.ms), (x.runsMs ?? []).map((v) => fmtMs(v)).join(', '), str(x.setup, '')];
        }),
        ['l', 'r', 'l', 'l'],
      ),
      '',
    );

  const profiled = report.results.filter((r) => extras(r).profile && extras(r).profile!.length > 0);
  if (profiled.length > 0) {
    lines.push(`${h(2)} What limits each cell (CPU profiles)`, '');
    for (const r of profiled) {
      const x = extras(r);
      lines.push(`${h(3)} ${r.protocol} / ${r.transport} / ${r.storage} / ${r.nodes} nodes / ${r.clients} clients / ${r.payloadBytes} B`, '');
      if (x.limitedBy) lines.push(`${x.limitedBy}`, '');
      x.profile!.forEach((p, i) => {
        if (x.profile!.length > 1) lines.push(`**${processLabel(p.file ?? '', i)}**: ${p.owners.slice(0, 6).map((o) => `${o.owner} ${(o.share * 100).toFixed(1)}%`).join(', ')}`, '');
        else lines.push(`Self time by owner: ${p.owners.slice(0, 8).map((o) => `${o.owner} ${(o.share * 100).toFixed(1)}%`).join(', ')}`, '');
        lines.push(mdTable(['function', 'where', 'self'], p.top.slice(0, 8).map((f) => [`\`${f.fn}\``, f.location, `${(f.share * 100).toFixed(1)}%`]), ['l', 'l', 'r']), '');
      });
    }
  }

  const skipped = (report as { skipped?: { what: string; reason: string }[] }).skipped ?? [];
  if (skipped.length > 0) {
    lines.push(`${h(2)} Not run`, '');
    for (const s of skipped) lines.push(`- ${s.what}: ${s.reason}`);
    lines.push('');
  }
  return lines.join('\n');
}
