/**
 * CPU profiles of the measurement window only: the V8 sampling profiler that `node --cpu-prof`
 * uses, driven through `node:inspector` so start-up, module loading and warm-up stay out of
 * the profile. The output is a standard `.cpuprofile` (open it in Chrome DevTools).
 */
import { Session } from 'node:inspector';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

function post<T = unknown>(s: Session, method: string, params: Record<string, unknown> = {}): Promise<T> {
  return new Promise<T>((resolve, reject) => s.post(method, params, (err, res) => (err ? reject(err) : resolve(res as T))));
}

/** Sampling interval of the window profiles, µs (`--cpu-prof-interval` defaults to 1000). */
export const PROFILE_INTERVAL_US = 250;

/** A CPU profile of this process between {@link start} and {@link stop}. */
export class WindowProfiler {
  private session: Session | null = null;
  private starting: Promise<void> | null = null;

  /** Starts sampling (idempotent). */
  start(): Promise<void> {
    if (this.starting) return this.starting;
    const s = new Session();
    s.connect();
    this.session = s;
    this.starting = (async () => {
      await post(s, 'Profiler.enable');
      await post(s, 'Profiler.setSamplingInterval', { interval: PROFILE_INTERVAL_US });
      await post(s, 'Profiler.start');
    })();
    return this.starting;
  }

  /** Stops sampling and writes the profile to `file`; resolves with `file`, or null if not started. */
  async stop(file: string): Promise<string | null> {
    const s = this.session;
    if (!s || !this.starting) return null;
    await this.starting;
    const { profile } = await post<{ profile: unknown }>(s, 'Profiler.stop');
    s.disconnect();
    this.session = null;
    this.starting = null;
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify(profile));
    return file;
  }
}
