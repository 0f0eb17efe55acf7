import { defineConfig } from 'tsup';

// Entry points: the CLI that `pnpm bench` runs, the child process entry (cell runner, ws
// replica, echo server) and the library surface used by tests. Workspace packages and npm
// dependencies stay external and are resolved from node_modules at run time.
export default defineConfig({
  entry: ['src/index.ts', 'src/cli.ts', 'src/child.ts'],
  format: ['esm'],
  dts: { entry: 'src/index.ts' },
  clean: true,
  sourcemap: true,
  target: 'es2022',
  platform: 'node',
});
