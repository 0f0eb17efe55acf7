/**
 * `@synod/log/testing/helpers` must load without vitest installed (README examples and scripts
 * use it). A lint-style check on the sources: every file reachable from `helpers.ts` through
 * relative imports imports no package at all (so never vitest), while `index.ts`, which holds
 * the conformance suites, does reach vitest (a control that the walker finds imports). Also:
 * the helpers are exactly the ones listed, `@synod/log/testing` re-exports the same objects,
 * and the entry is wired in package.json `exports` and tsup's entries.
 */
import { describe, expect, it } from 'vitest';
import * as helpers from './helpers.js';
import * as testing from './index.js';

// This package has no Node types ("types": []): type the few Node functions the check uses.
interface Fs {
  readFileSync(path: string, encoding: 'utf8'): string;
  existsSync(path: string): boolean;
}
interface Path {
  join(...parts: string[]): string;
  dirname(path: string): string;
  relative(from: string, to: string): string;
}
interface Url {
  fileURLToPath(url: string): string;
}
const fs = (await import('node:fs' as string)) as Fs;
const path = (await import('node:path' as string)) as Path;
const url = (await import('node:url' as string)) as Url;

const HERE = path.dirname(url.fileURLToPath((import.meta as unknown as { url: string }).url));
const PKG = path.join(HERE, '..', '..');

/** Static imports, re-exports (also type-only) and dynamic `import('...')` of a module's source. */
function specifiers(source: string): string[] {
  const re = /(?:^|[\s;])(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
  return [...source.matchAll(re)].map((m) => (m[1] ?? m[2])!);
}

/** Every source file reachable from `entry` through relative imports, and the package imports found on the way. */
function closure(entry: string): { files: string[]; packages: { file: string; spec: string }[] } {
  const files: string[] = [];
  const packages: { file: string; spec: string }[] = [];
  const todo = [entry];
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (files.includes(file)) continue;
    files.push(file);
    for (const spec of specifiers(fs.readFileSync(file, 'utf8'))) {
      if (spec.startsWith('.')) {
        const target = path.join(path.dirname(file), spec.replace(/\.js$/, '.ts'));
        expect(fs.existsSync(target), `${path.relative(PKG, file)} imports ${spec}, which does not exist`).toBe(true);
        todo.push(target);
      } else {
        packages.push({ file: path.relative(PKG, file), spec });
      }
    }
  }
  return { files: files.map((f) => path.relative(PKG, f)).sort(), packages };
}

const HELPERS = [
  'DEFAULT_VIRTUAL_LIMIT_MS',
  'VirtualTimeLimitError',
  'flushMicrotasks',
  'nullTransport',
  'runUntil',
  'settle',
  'soloProtocol',
  'testCodec',
  'testMessage',
];

describe('@synod/log/testing/helpers', () => {
  it('reaches no package (so never vitest) from any of its source files', () => {
    const { files, packages } = closure(path.join(HERE, 'helpers.ts'));
    // The walk really went through the helpers and into the contract they build on.
    for (const f of ['src/testing/solo.ts', 'src/testing/null-transport.ts', 'src/testing/virtual-time.ts', 'src/testing/test-codec.ts', 'src/errors.ts']) {
      expect(files).toContain(f);
    }
    expect(files.some((f) => f.includes('conformance'))).toBe(false);
    expect(packages).toEqual([]);
  });

  it('the walker does see vitest behind @synod/log/testing (control)', () => {
    const { packages } = closure(path.join(HERE, 'index.ts'));
    expect(packages.map((p) => p.spec)).toContain('vitest');
    expect(packages.map((p) => p.file)).toEqual(expect.arrayContaining(['src/testing/storage-conformance.ts', 'src/testing/transport-conformance.ts']));
  });

  it('exports exactly the runner-free helpers, and @synod/log/testing re-exports the same objects', () => {
    expect(Object.keys(helpers).sort()).toEqual(HELPERS);
    const all = testing as Record<string, unknown>;
    for (const name of HELPERS) expect(all[name], name).toBe((helpers as Record<string, unknown>)[name]);
    expect(Object.keys(testing).sort()).toEqual([...HELPERS, 'storageConformance', 'transportConformance'].sort());
  });

  it('is wired as an entry point in package.json exports and in tsup', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(PKG, 'package.json'), 'utf8')) as { exports: Record<string, Record<string, string>> };
    expect(pkg.exports['./testing/helpers']).toEqual({
      '@synod/source': './src/testing/helpers.ts',
      types: './dist/testing/helpers.d.ts',
      import: './dist/testing/helpers.js',
    });
    expect(fs.readFileSync(path.join(PKG, 'tsup.config.ts'), 'utf8')).toContain("'src/testing/helpers.ts'");
  });
});
