/**
 * The HTML timeline: one lane per client with operations, the violation marked (line, label,
 * scroll on load), the involved node highlighted, nothing loaded from elsewhere.
 */
import { describe, expect, it } from 'vitest';
import type { KvOperation } from './kv-model.js';
import { renderTimeline } from './timeline.js';

function op(id: number, client: number, callTime: number, returnTime: number, node?: string): KvOperation {
  return {
    id,
    client,
    input: { f: 'put', key: 'k', value: `v${id}` },
    output: {},
    status: 'ok',
    call: 2 * id,
    return: 2 * id + 1,
    callTime,
    returnTime,
    ...(node ? { node } : {}),
  };
}

const lanes = (html: string) => [...html.matchAll(/class="lane" data-client="(\d+)">([^<]*)</g)].map((m) => ({ client: Number(m[1]), label: m[2] }));
const rectClass = (html: string, id: number) => new RegExp(`class="([^"]*)" data-op="${id}"`).exec(html)?.[1];

describe('renderTimeline', () => {
  const history = [op(0, 0, 0, 10, 'n1'), op(1, 2, 5, 30, 'n2'), op(2, 7, 40, 41, 'n20'), op(3, 2, 50, 60)];

  it('draws one lane per client that has an operation, in client order, and no other', () => {
    const html = renderTimeline({ title: 't', history });
    expect(lanes(html)).toEqual([
      { client: 0, label: 'client 0' },
      { client: 2, label: 'client 2' },
      { client: 7, label: 'client 7' },
    ]);
    expect(html).not.toContain('client 1<');
    // Every operation is drawn.
    for (const o of history) expect(rectClass(html, o.id)).toBeDefined();
  });

  it('names lanes from laneLabels', () => {
    const html = renderTimeline({ title: 't', history, laneLabels: new Map([[7, 'final reads']]) });
    expect(lanes(html).map((l) => l.label)).toEqual(['client 0', 'client 2', 'final reads']);
  });

  it('marks the violation: a line and label at its time, the node highlighted, a scroll to it on load', () => {
    const events: [number, string][] = [
      [20, 'crash n2'],
      [25, 'crash n20'],
      [35, 'partition n1 n2 | n3'],
      [45, 'message faults off'],
    ];
    const html = renderTimeline({ title: 't', history, events, marker: { time: 33, label: 'vote-durability (n2)', node: 'n2' } });
    const marker = /<g id="violation" class="violation" data-time="(\d+)" data-node="([^"]+)" data-x="([\d.]+)">(.*?)<\/g>/.exec(html);
    expect(marker).not.toBeNull();
    expect(marker![1]).toBe('33');
    expect(marker![2]).toBe('n2');
    expect(marker![4]).toContain('<line ');
    expect(marker![4]).toContain('33 ms: vote-durability (n2)');
    // The marker sits between the lines of the nemesis actions at 25 and 35 ms.
    const eventX = [...html.matchAll(/<line x1="([\d.]+)"[^>]*class="event[^"]*"/g)].map((m) => Number(m[1]));
    expect(Number(marker![3])).toBeGreaterThan(eventX[1]!);
    expect(Number(marker![3])).toBeLessThan(eventX[2]!);
    // Operations through n2 and nemesis actions naming n2 (not n20) are highlighted.
    expect(rectClass(html, 1)).toContain('node');
    expect(rectClass(html, 0)).not.toContain('node');
    expect(rectClass(html, 2)).not.toContain('node');
    const eventClasses = [...html.matchAll(/class="(event[^"]*)"><title>[^:]*: ([^<]*)</g)].map((m) => [m[2], m[1]]);
    expect(eventClasses).toEqual([
      ['crash n2', 'event node'],
      ['crash n20', 'event'],
      ['partition n1 n2 | n3', 'event node'],
      ['message faults off', 'event'],
    ]);
    // Opens at the marker.
    expect(html).toMatch(/<script>[^<]*getElementById\('violation'\)[^<]*scrollLeft[^<]*<\/script>/);
  });

  it('widens the axis to a marker after the last operation', () => {
    const html = renderTimeline({ title: 't', history, marker: { time: 500, label: 'convergence' } });
    expect(html).toContain('data-time="500"');
    const axis = [...html.matchAll(/class="axis">(\d+) ms</g)].map((m) => Number(m[1]));
    expect(Math.max(...axis)).toBeGreaterThanOrEqual(450);
    expect(html).not.toContain('data-node=');
  });

  it('without a marker: no marker, no script', () => {
    const html = renderTimeline({ title: 't', history });
    expect(html).not.toContain('id="violation"');
    expect(html).not.toContain('<script');
  });

  it('is self-contained and escapes text', () => {
    const html = renderTimeline({ title: '<b>&', notes: ['a < b'], history, marker: { time: 5, label: '<x>' } });
    expect(html).not.toMatch(/\s(src|href)=/);
    expect(html).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    expect(html).not.toContain('<b>&');
    expect(html).toContain('&lt;b&gt;&amp;');
    expect(html).toContain('5 ms: &lt;x&gt;');
  });

  it('draws a highlighted operation wide enough to see even when it took no time', () => {
    const h = [op(0, 0, 0, 1000), op(1, 1, 500, 500)];
    const html = renderTimeline({ title: 't', history: h, highlight: new Set([1]) });
    const w = Number(/width="([\d.]+)" height="\d+" rx="3" class="ok hl" data-op="1"/.exec(html)?.[1]);
    expect(w).toBeGreaterThanOrEqual(10);
  });
});
