import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { defineConfig } from 'tsup';

/**
 * Fails the build if the built `@synod/log/testing/helpers` (or a chunk it loads) imports any
 * package: it must run without vitest installed. The conformance suites of
 * `@synod/log/testing` are the only built code that imports vitest.
 */
function checkHelpersImportNoPackage(): void {
  const seen = new Set<string>();
  const todo = ['dist/testing/helpers.js'];
  const re = /(?:^|[\s;])(?:import|export)\s*(?:[^'";]*?\sfrom\s*)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const m of readFileSync(file, 'utf8').matchAll(re)) {
      const spec = (m[1] ?? m[2])!;
      if (!spec.startsWith('.')) throw new Error(`${file} imports '${spec}': dist/testing/helpers.js must load without any package (vitest in particular)`);
      todo.push(join(dirname(file), spec));
    }
  }
}

export default defineConfig({
  entry: ['src/index.ts', 'src/testing/index.ts', 'src/testing/helpers.ts'],
  format: ['esm'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'es2022',
  external: ['vitest'],
  onSuccess: async () => checkHelpersImportNoPackage(),
});
