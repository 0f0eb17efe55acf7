/**
 * Summaries of V8 CPU profiles (`node --cpu-prof` `.cpuprofile` files): self time per
 * function and per "owner" (a synod package, an npm package, Node internals, GC, idle), so a
 * report can say what limits a cell and name the functions to look at.
 */
import { readFileSync } from 'node:fs';

/** The subset of the `.cpuprofile` format this module reads. */
export interface CpuProfile {
  readonly nodes: readonly {
    readonly id: number;
    readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number; readonly columnNumber?: number };
    readonly hitCount?: number;
    readonly children?: readonly number[];
  }[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples?: readonly number[];
  readonly timeDeltas?: readonly number[];
}

/** Self time of one owner. */
export interface OwnerTime {
  readonly owner: string;
  readonly ms: number;
  /** Share of the profile's whole duration, 0..1. */
  readonly share: number;
}

/** Self time of one function. */
export interface FunctionTime {
  readonly fn: string;
  /** `owner/file:line` (1-based line). */
  readonly location: string;
  readonly owner: string;
  readonly ms: number;
  readonly share: number;
}

/** The summary of one profile. */
export interface ProfileSummary {
  readonly file: string;
  readonly totalMs: number;
  /** Owners by self time, descending (idle included as `(idle)`). */
  readonly owners: readonly OwnerTime[];
  /** The top functions by self time, idle and GC excluded. */
  readonly top: readonly FunctionTime[];
}

/**
 * Who a call frame belongs to: `@synod/<pkg>` for workspace packages (source or dist), the npm
 * package name under node_modules, `node` for Node's own modules, `(gc)`, `(idle)`,
 * `(program)` (V8 and native code without a JS frame), or `(native)` for other frames with no
 * script ({@link summarizeProfile} then charges them to their JavaScript caller's owner, or to
 * `(profiler)` when the caller is the inspector session that runs the profiler).
 */
export function ownerOf(url: string, functionName: string): string {
  if (functionName === '(garbage collector)') return '(gc)';
  if (functionName === '(idle)') return '(idle)';
  if (functionName === '(program)') return '(program)';
  if (functionName === '(root)') return '(root)';
  if (!url) return '(native)';
  if (url.startsWith('node:')) return 'node';
  const path = url.replace(/^file:\/\//, '');
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = path.slice(nm + '/node_modules/'.length).split('/');
    const name = rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
    if (name && !name.startsWith('.')) return name;
  }
  const pkg = /\/packages\/([^/]+)\//.exec(path);
  if (pkg) return `@synod/${pkg[1]}`;
  const app = /\/apps\/([^/]+)\//.exec(path);
  if (app) return `@synod/${app[1]}`;
  return 'other';
}

function shortFile(url: string): string {
  const path = url.replace(/^file:\/\//, '');
  const m = /\/(packages|apps)\/([^/]+)\/(.*)$/.exec(path);
  if (m) return `${m[1]}/${m[2]}/${m[3]}`;
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) return path.slice(nm + '/node_modules/'.length);
  return path;
}

/** Summarizes a parsed profile. */
export function summarizeProfile(p: CpuProfile, file = '', topN = 12): ProfileSummary {
  const selfUs = new Map<number, number>();
  if (p.samples && p.timeDeltas && p.samples.length === p.timeDeltas.length) {
    // timeDeltas[i] is the time before sample i; attribute it to the sample's node.
    for (let i = 0; i < p.samples.length; i++) {
      const id = p.samples[i]!;
      selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, p.timeDeltas[i]!));
    }
  } else {
    const total = p.endTime - p.startTime;
    const hits = p.nodes.reduce((s, n) => s + (n.hitCount ?? 0), 0) || 1;
    for (const n of p.nodes) selfUs.set(n.id, ((n.hitCount ?? 0) / hits) * total);
  }
  const totalUs = Math.max(1, [...selfUs.values()].reduce((a, b) => a + b, 0));
  // Native frames (no script URL, e.g. better-sqlite3's Statement.run, a socket writev) are
  // charged to the nearest JavaScript caller's owner, so `(native)` time says whose it is.
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const jsCaller = (id: number): CpuProfile['nodes'][number] | null => {
    let cur = parent.get(id);
    for (let guard = 0; cur !== undefined && guard < 1000; guard++) {
      const n = byId.get(cur);
      if (!n) return null;
      if (n.callFrame.url) return n;
      cur = parent.get(cur);
    }
    return null;
  };
  const owners = new Map<string, number>();
  const fns = new Map<string, { fn: string; location: string; owner: string; us: number }>();
  for (const n of p.nodes) {
    const us = selfUs.get(n.id) ?? 0;
    if (us === 0) continue;
    const cf = n.callFrame;
    let owner = ownerOf(cf.url, cf.functionName);
    let location = cf.url ? `${shortFile(cf.url)}:${cf.lineNumber + 1}` : '(native)';
    if (owner === '(native)') {
      const caller = jsCaller(n.id);
      if (caller?.callFrame.url === 'node:inspector') {
        // The profiler's own session traffic (start/stop) inside the window.
        owner = '(profiler)';
      } else if (caller) {
        owner = `${ownerOf(caller.callFrame.url, caller.callFrame.functionName)} (native)`;
        location = `native, called from ${caller.callFrame.functionName || '(anonymous)'} ${shortFile(caller.callFrame.url)}:${caller.callFrame.lineNumber + 1}`;
      }
    }
    owners.set(owner, (owners.get(owner) ?? 0) + us);
    if (owner === '(idle)' || owner === '(gc)' || owner === '(program)' || owner === '(root)' || owner === '(profiler)') continue;
    const fn = cf.functionName || '(anonymous)';
    const key = `${fn}@${location}`;
    const cur = fns.get(key);
    if (cur) cur.us += us;
    else fns.set(key, { fn, location, owner, us });
  }
  const ms = (us: number) => Math.round(us / 100) / 10;
  return {
    file,
    totalMs: ms(totalUs),
    owners: [...owners.entries()]
      .map(([owner, us]) => ({ owner, ms: ms(us), share: us / totalUs }))
      .sort((a, b) => b.ms - a.ms),
    top: [...fns.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, topN)
      .map((f) => ({ fn: f.fn, location: f.location, owner: f.owner, ms: ms(f.us), share: f.us / totalUs })),
  };
}

/** Reads and summarizes a `.cpuprofile` file. */
export function summarizeProfileFile(file: string, topN = 12): ProfileSummary {
  return summarizeProfile(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, file, topN);
}

/**
 * One line saying what a profiled thread did during the window: how busy it was and the
 * owners of most self time. Time blocked in a synchronous native call (better-sqlite3's commit
 * waits for fsync on the main thread) counts as busy here, though the process's CPU time does
 * not include it: compare with the cell's CPU %.
 */
export function describeLimit(s: ProfileSummary): string {
  const idle = s.owners.find((o) => o.owner === '(idle)')?.share ?? 0;
  const busy = s.owners.filter((o) => o.owner !== '(idle)' && o.owner !== '(root)' && o.owner !== '(profiler)').slice(0, 3);
  const parts = busy.map((o) => `${o.owner} ${(o.share * 100).toFixed(0)}%`);
  return `main thread busy ${((1 - idle) * 100).toFixed(0)}%: ${parts.join(', ')}`;
}

/** A short label of a profile's process from its file name: `n1 (leader)`, `n2`, or `process i`. */
export function processLabel(file: string, i: number): string {
  const m = /_(n\d+)(_leader)?\.cpuprofile$/.exec(file);
  if (!m) return `process ${i + 1}`;
  return m[2] ? `${m[1]} (leader)` : m[1]!;
}
