/**
 * The throughput chart of the report: ops/s against concurrent clients, one line per protocol
 * and storage, one panel per transport and payload size; dashed lines for 5 nodes. Rendered to
 * SVG headless with vega-lite (compile) and vega (`View.toSVG()`), no browser.
 */
import { parse, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { ResultRecord } from './schema.js';

/** The vega-lite specification of the chart for `results` (exported for tests). */
export function throughputSpec(results: readonly ResultRecord[]): TopLevelSpec {
  const values = results.map((r) => ({
    series: `${r.protocol} · ${r.storage}`,
    transport: `${r.transport} transport`,
    payload: `${r.payloadBytes} B`,
    nodes: `${r.nodes} nodes`,
    clients: r.clients,
    opsPerSec: Math.round(r.opsPerSec),
  }));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Throughput against concurrent clients', subtitle: 'ops/s (log scale); colour: protocol · storage; dash: node count' },
    data: { values },
    facet: {
      column: { field: 'transport', type: 'nominal', title: null },
      row: { field: 'payload', type: 'nominal', title: 'payload' },
    },
    spec: {
      width: 260,
      height: 200,
      layer: [
        {
          mark: { type: 'line', point: { filled: true, size: 50 } },
          encoding: {
            x: { field: 'clients', type: 'quantitative', scale: { type: 'log', base: 2 }, title: 'concurrent clients', axis: { values: [1, 4, 16, 64, 256] } },
            y: { field: 'opsPerSec', type: 'quantitative', scale: { type: 'log' }, title: 'ops/s', axis: { format: '~s' } },
            color: { field: 'series', type: 'nominal', title: 'protocol · storage', legend: { orient: 'bottom', columns: 4, labelLimit: 400 } },
            strokeDash: { field: 'nodes', type: 'nominal', title: null, legend: { labelLimit: 400 } },
            detail: { field: 'nodes', type: 'nominal' },
            tooltip: [{ field: 'series' }, { field: 'nodes' }, { field: 'clients' }, { field: 'opsPerSec' }],
          },
        },
      ],
    },
    resolve: { scale: { y: 'shared' } },
    config: { font: 'sans-serif', background: 'white' },
  } as TopLevelSpec;
}

/** Renders the chart as an SVG document. With no results, an SVG saying so. */
export async function renderThroughputSvg(results: readonly ResultRecord[]): Promise<string> {
  if (results.length === 0) {
    return '<svg xmlns="http://www.w3.org/2000/svg" width="360" height="40"><text x="10" y="25" font-family="sans-serif">no results</text></svg>';
  }
  const vg = compile(throughputSpec(results)).spec;
  const view = new View(parse(vg), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
