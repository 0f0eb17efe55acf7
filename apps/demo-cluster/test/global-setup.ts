/**
 * Builds `dist/` (cli.js, replica.js) with tsup before the end-to-end suites run, so they
 * always exercise the current source. Workspace dependencies are built by turbo (`^build`).
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { PKG_DIR } from './harness.js';

export default function setup(): void {
  execFileSync(join(PKG_DIR, 'node_modules', '.bin', 'tsup'), [], {
    cwd: PKG_DIR,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}
