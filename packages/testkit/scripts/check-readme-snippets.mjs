#!/usr/bin/env node
// Type-checks every ```ts snippet of README.md on its own, under the repository's strict
// settings, as a user of the published package would write it: `@synod/testkit` resolves to
// src/index.ts, other imports to this package's dependencies, Node's types are available (the
// snippets log with `console`). Each snippet must bring its own imports. Run by `pnpm typecheck`.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const readme = readFileSync(join(pkg, 'README.md'), 'utf8');
const snippets = [...readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
if (snippets.length === 0) {
  console.error('README.md: no ```ts snippets found');
  process.exit(1);
}
// Inside node_modules, so imports resolve through this package's dependencies.
const dir = join(pkg, 'node_modules', '.readme-snippets');
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const files = snippets.map((code, i) => {
  const file = `snippet-${i + 1}.ts`;
  writeFileSync(join(dir, file), code);
  return file;
});
writeFileSync(
  join(dir, 'tsconfig.json'),
  JSON.stringify({
    extends: join(pkg, '../../tsconfig.base.json'),
    compilerOptions: { types: ['node'], paths: { '@synod/testkit': [join(pkg, 'src/index.ts')] } },
    files,
  }),
);
const tsc = createRequire(join(pkg, 'package.json')).resolve('typescript/bin/tsc');
try {
  execFileSync(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json')], { stdio: 'inherit' });
} catch {
  console.error(`\nREADME.md: a snippet does not type-check (files in ${dir}; snippet-N is the N-th \`\`\`ts block)`);
  process.exit(1);
}
console.log(`README.md: ${snippets.length} TypeScript snippets type-check`);
