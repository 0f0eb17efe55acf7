import { describe, expect, it } from 'vitest';
import { fixtureReport } from '../test/fixture.js';
import { renderThroughputSvg, throughputSpec } from './chart.js';
import { fmtMs, fmtRate, fmtRatio, mdTable } from './format.js';
import { checkGoals } from './goals.js';
import { renderMarkdown, renderTerminalTable } from './report.js';
import { parseBenchReport } from './schema.js';

const report = () => parseBenchReport(fixtureReport());

describe('goals', () => {
  it('checks each goal of issue 6 against the results', () => {
    const g = checkGoals(report());
    expect(g.map((x) => x.met)).toEqual([true, true, true, false]);
    expect(g[2]!.measured).toMatch(/^312\.5×/);
    expect(g[3]!.measured).toMatch(/worst 0\.72×/);
  });

  it('reports goals that were not measured as null', () => {
    const g = checkGoals({ results: [], peers: [] });
    expect(g.map((x) => x.met)).toEqual([null, null, null, null]);
  });

  it('a slow raft cell misses its goal', () => {
    const r = report();
    const slow = { ...r, results: r.results.map((x) => (x.transport === 'memory' && x.clients === 256 && x.protocol === 'raft' ? { ...x, opsPerSec: 199_999 } : x)) };
    expect(checkGoals(slow)[0]!.met).toBe(false);
  });
});

describe('formatting', () => {
  it('formats rates, latencies and ratios', () => {
    expect(fmtRate(123456.7)).toBe('123,457');
    expect(fmtRate(12.34)).toBe('12.3');
    expect(fmtMs(0.012345)).toBe('0.0123');
    expect(fmtMs(12345)).toBe('12,345');
    expect(fmtMs(0)).toBe('0');
    expect(fmtRatio(0.4567)).toBe('45.7%');
    expect(fmtRatio(null)).toBe('–');
  });

  it('builds Markdown tables with escaped cells', () => {
    expect(mdTable(['a', 'b'], [['x|y', '1']], ['l', 'r'])).toBe('| a | b |\n| --- | ---: |\n| x\\|y | 1 |');
  });
});

describe('Markdown report', () => {
  const md = renderMarkdown(report(), { chartPath: 'throughput.svg' });

  it('has the machine, the command and every section', () => {
    expect(md).toContain('2 × Test CPU, 24 GiB RAM, Linux 6.1.0 x64, Node v20.20.2');
    expect(md).toContain('`pnpm bench`');
    for (const h of ['## Goals', '## Results', '## Baselines', '## Peers', '## Failover', '## What limits each cell', '## Not run']) expect(md).toContain(h);
    expect(md).toContain('![Throughput against concurrent clients](throughput.svg)');
  });

  it('renders one row per result with its ratio and limit', () => {
    expect(md).toContain('| raft | ws | sqlite | 3 | 256 | 16 | 31,000 | 8 | 30 | 50 | 51.7% | sqlite-append-batched-16B | 120% | 300 |');
    expect(md.match(/^\| (raft|paxos) \|/gm)).toHaveLength(4 + 1); // results + failover row
  });

  it('shows goal status, profiles per process, peers, failover and skipped cells', () => {
    expect(md).toMatch(/paxos within 20% of raft.*\*\*not met\*\*/);
    expect(md).toContain('**n1 (leader)**');
    expect(md).toContain('| @markwylde/liferaft | 1.4.0 | 3 | 16 | 700 | 20 | 1,000 | 40 |');
    expect(md).toContain('| raft | 1,450 | 1,400, 1,450, 1,500 |');
    expect(md).toContain('- paxos/ws/sqlite/n3/c256/p16: @synod/paxos cannot be loaded');
  });

  it('shows batching when the cells measured it', () => {
    const r = fixtureReport();
    const results: Record<string, unknown>[] = [...r.results];
    results[1] = { ...r.results[1]!, persistsPerSec: 3800, entriesPerPersist: 126.5, messagesPerOp: 0.03 };
    const out = renderMarkdown(parseBenchReport({ ...r, results }), { chartPath: null });
    expect(out).toContain('## Batching');
    expect(out).toContain('| raft | memory | memory | 3 | 256 | 16 | 3,800 | 126.5 | 0.03 | – |');
    expect(md).not.toContain('## Batching');
  });

  it('can nest under another document', () => {
    expect(renderMarkdown(report(), { chartPath: null, headingLevel: 2 })).toMatch(/^## synod benchmark/);
  });
});

describe('terminal table', () => {
  it('lists results, baselines, peers, failover and goals', () => {
    // eslint-disable-next-line no-control-regex
    const t = renderTerminalTable(report()).replace(/\u001b\[[0-9;]*m/g, '');
    expect(t).toContain('250,000');
    expect(t).toContain('sqlite-append-batched-16B');
    expect(t).toContain('@markwylde/liferaft');
    expect(t).toContain('NOT met');
  });
});

describe('chart', () => {
  it('plots ops/s against clients, one series per protocol and storage, a panel per transport', () => {
    const spec = throughputSpec(report().results) as unknown as { data: { values: { series: string; transport: string }[] } };
    expect(new Set(spec.data.values.map((v) => v.series))).toEqual(new Set(['raft · memory', 'paxos · memory', 'raft · sqlite']));
    expect(new Set(spec.data.values.map((v) => v.transport))).toEqual(new Set(['memory transport', 'ws transport']));
  });

  it('renders an SVG headless', async () => {
    const svg = await renderThroughputSvg(report().results);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('raft · memory');
    expect(svg).toContain('concurrent clients');
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
  });

  it('renders a placeholder without results', async () => {
    expect(await renderThroughputSvg([])).toContain('no results');
  });
});
