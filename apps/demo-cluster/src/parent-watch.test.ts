/**
 * The parent watcher with injected pid sources (fake timers, no processes): it fires once when
 * the parent pid changes or a watched ancestor dies, never before, never after `stop()`; the
 * package-manager detection; finding the package manager above the script's shell in /proc.
 */
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { packageManagerAncestors, processAlive, startedByPackageManager, watchParent } from './parent-watch.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('watchParent', () => {
  it('calls onGone once, within one interval of the parent pid changing', () => {
    vi.useFakeTimers();
    let ppid = 4242;
    const onGone = vi.fn();
    watchParent({ initialPpid: 4242, currentPpid: () => ppid, intervalMs: 500, onGone });
    vi.advanceTimersByTime(5_000);
    expect(onGone).not.toHaveBeenCalled();
    ppid = 1; // re-parented: the package manager and its shell are gone
    vi.advanceTimersByTime(500);
    expect(onGone).toHaveBeenCalledTimes(1);
    expect(onGone).toHaveBeenCalledWith('parent process 4242 exited');
    vi.advanceTimersByTime(5_000);
    expect(onGone).toHaveBeenCalledTimes(1);
  });

  it('calls onGone when a watched ancestor dies while the parent stays', () => {
    vi.useFakeTimers();
    const alive = new Set([100, 200]);
    const onGone = vi.fn();
    watchParent({ initialPpid: 100, currentPpid: () => 100, ancestors: [200], isAlive: (pid) => alive.has(pid), onGone });
    vi.advanceTimersByTime(2_000);
    expect(onGone).not.toHaveBeenCalled();
    alive.delete(200); // `kill -9` of the package manager: its shell survives
    vi.advanceTimersByTime(500);
    expect(onGone).toHaveBeenCalledExactlyOnceWith('package manager process 200 exited');
  });

  it('never fires after stop()', () => {
    vi.useFakeTimers();
    let ppid = 7;
    const onGone = vi.fn();
    const w = watchParent({ initialPpid: 7, currentPpid: () => ppid, onGone });
    vi.advanceTimersByTime(1_000);
    w.stop();
    ppid = 1;
    vi.advanceTimersByTime(5_000);
    expect(onGone).not.toHaveBeenCalled();
  });

  it("uses an unref'd timer and reads process.ppid by default", () => {
    const onGone = vi.fn();
    const w = watchParent({ initialPpid: process.ppid, onGone });
    expect(w.timer.hasRef()).toBe(false);
    w.stop();
    expect(onGone).not.toHaveBeenCalled();
  });
});

describe('startedByPackageManager', () => {
  it('is true only with a non-empty npm_lifecycle_event (npm, pnpm and yarn scripts set it)', () => {
    expect(startedByPackageManager({ npm_lifecycle_event: 'demo' })).toBe(true);
    expect(startedByPackageManager({})).toBe(false);
    expect(startedByPackageManager({ npm_lifecycle_event: '' })).toBe(false);
    expect(startedByPackageManager({ npm_execpath: '/usr/bin/pnpm' })).toBe(false);
  });
});

describe('packageManagerAncestors', () => {
  const procOf = (files: Record<string, string>) => (path: string) => {
    const f = files[path];
    if (f === undefined) throw new Error(`ENOENT ${path}`);
    return f;
  };

  it("is the shell's parent when the parent is the script's shell", () => {
    const read = procOf({ '/proc/300/comm': 'sh\n', '/proc/300/stat': '300 (sh) S 299 300 12 0 -1 4194560 ...' });
    expect(packageManagerAncestors(300, read)).toEqual([299]);
  });

  it('parses stat after the last parenthesis (a command name may hold spaces and parentheses)', () => {
    const read = procOf({ '/proc/300/comm': 'bash\n', '/proc/300/stat': '300 (we (ird) x) S 77 300 12 0' });
    expect(packageManagerAncestors(300, read)).toEqual([77]);
  });

  it('is empty when the parent is not a shell, the shell hangs off init, or there is no procfs', () => {
    expect(packageManagerAncestors(300, procOf({ '/proc/300/comm': 'node\n', '/proc/300/stat': '300 (node) S 299' }))).toEqual([]);
    expect(packageManagerAncestors(300, procOf({ '/proc/300/comm': 'sh\n', '/proc/300/stat': '300 (sh) S 1 300' }))).toEqual([]);
    expect(packageManagerAncestors(300, procOf({}))).toEqual([]);
  });
});

describe('processAlive', () => {
  it('tells a running process from one that has exited', async () => {
    expect(processAlive(process.pid)).toBe(true);
    const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    const pid = child.pid!;
    await new Promise((resolve) => child.on('exit', resolve));
    // Reaped by Node once 'exit' fired; the pid is free (reuse within this test is negligible).
    expect(processAlive(pid)).toBe(false);
  });
});
