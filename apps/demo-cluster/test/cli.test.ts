/**
 * The CLI refuses what it cannot run, with a clear message and exit code 1, before any replica
 * starts: a broken cluster.json, a body limit beyond what a replica can accept.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, freePortBlock, tempDataDir } from './harness.js';
import { MAX_BODY_BYTES_LIMIT } from '../src/limits.js';

function run(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    p.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
    p.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
    // Safety net: a CLI that unexpectedly starts is stopped.
    const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('CLI refusals', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const member = (id: string, slot: number) => ({ id, slot, bootstrap: true, initialized: true });
  const cases: [string, string, RegExp][] = [
    ['syntax error', '{"version": 1, "protocol": "raft", "members": [', /cluster\.json is not valid JSON/],
    ['duplicate ids', JSON.stringify({ version: 1, protocol: 'raft', bootstrap: ['n1'], members: [member('n1', 0), member('n1', 1)] }), /member id "n1" appears more than once/],
    ['duplicate slots', JSON.stringify({ version: 1, protocol: 'raft', bootstrap: ['n1'], members: [member('n1', 0), member('n2', 0)] }), /port slot 0 is used by n1 and n2/],
    ['empty member list', JSON.stringify({ version: 1, protocol: 'raft', bootstrap: ['n1'], members: [] }), /member list is empty/],
  ];

  it.each(cases)('refuses a cluster.json with %s (exit 1, names the file)', async (_what, content, message) => {
    const dir = tempDataDir();
    dirs.push(dir);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'cluster.json'), content);
    const port = await freePortBlock(4);
    const r = await run(['--port', String(port), '--data-dir', dir]);
    expect(r.code).toBe(1);
    expect(r.output).toContain(join(dir, 'cluster.json'));
    expect(r.output).toMatch(message);
    expect(r.output).not.toMatch(/gateway listening/);
  });

  it('refuses a --max-body-bytes above what a replica command can hold', async () => {
    const dir = tempDataDir();
    dirs.push(dir);
    const r = await run(['--max-body-bytes', String(MAX_BODY_BYTES_LIMIT + 1), '--data-dir', dir]);
    expect(r.code).toBe(1);
    expect(r.output).toMatch(new RegExp(`--max-body-bytes.*expected 1\\.\\.${MAX_BODY_BYTES_LIMIT}`));
  });
});
