import { defineConfig } from 'tsup';

// Three entry points: the library surface (index), the CLI the root `pnpm demo` script runs,
// and the replica process the supervisor forks. Workspace packages stay external: they are
// resolved from their own dist/ at run time (turbo builds them first).
export default defineConfig({
  entry: ['src/index.ts', 'src/cli.ts', 'src/replica.ts'],
  format: ['esm'],
  dts: { entry: 'src/index.ts' },
  clean: true,
  sourcemap: true,
  target: 'es2022',
  platform: 'node',
});
