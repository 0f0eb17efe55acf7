#!/usr/bin/env node
// Lint for the package rooms of docs/design.md: run in a package directory. Checks every import in src/ against
// the package's allowed imports, that pure packages use no Node built-ins, and that every
// exported declaration has a docstring.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const ROOMS = {
  '@synod/log': { allow: [], pure: true },
  '@synod/raft': { allow: ['@synod/log'], pure: true },
  '@synod/paxos': { allow: ['@synod/log'], pure: true },
  '@synod/transport-memory': { allow: ['@synod/log'], pure: true },
  '@synod/transport-ws': { allow: ['@synod/log', 'ws'], pure: false },
  '@synod/storage-sqlite': { allow: ['@synod/log', 'better-sqlite3'], pure: false },
  '@synod/kv': { allow: ['@synod/log'], pure: true },
  '@synod/testkit': {
    allow: ['@synod/log', '@synod/raft', '@synod/paxos', '@synod/transport-memory', '@synod/kv'],
    pure: true,
  },
};

const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
const room = ROOMS[pkg.name];
// Apps may import everything; only the docstring rule applies to them.

function* files(dir) {
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) yield* files(p);
    else if (p.endsWith('.ts')) yield p;
  }
}

const problems = [];
for (const file of room ? files('src') : []) {
  const isTest = file.endsWith('.test.ts') || file.includes('/testing/') || file.includes('/test/');
  // Command-line entry points (src/cli/) of a pure package may use Node: they are not the library.
  const isCli = file.includes('src/cli/');
  if (isCli) continue;
  const src = readFileSync(file, 'utf8');
  const re = /(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
  for (const m of src.matchAll(re)) {
    const spec = m[1] ?? m[2];
    if (spec.startsWith('.')) continue;
    const typeOnly = /^(?:import|export)\s+type\s/.test(m[0]);
    if (spec.startsWith('node:') || ['fs', 'path', 'os', 'child_process', 'net', 'http', 'crypto', 'worker_threads'].includes(spec)) {
      if (room.pure && !isTest) problems.push(`${relative('.', file)}: Node built-in '${spec}' in a pure package`);
      continue;
    }
    if (isTest) continue; // tests may use any dev dependency
    const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
    if (name === pkg.name) continue;
    if (typeOnly && name === 'vitest') continue;
    if (!room.allow.includes(name)) problems.push(`${relative('.', file)}: imports '${spec}', outside the room of ${pkg.name}`);
  }
}
// Every exported declaration of the library carries a docstring (shapes, units, errors, source).
for (const file of files('src')) {
  if (file.endsWith('.test.ts') || file.includes('/test/')) continue;
  const lines = readFileSync(file, 'utf8').split('\n');
  lines.forEach((line, i) => {
    const m = /^export (?:declare )?(?:abstract )?(?:async )?(function|class|const|let|interface|type|enum) (\w+)/.exec(line);
    if (!m) return;
    let j = i - 1;
    while (j >= 0 && (lines[j].trim() === '' || lines[j].trim().startsWith('@'))) j--;
    if (j < 0 || !lines[j].trim().endsWith('*/')) problems.push(`${relative('.', file)}:${i + 1}: exported ${m[1]} ${m[2]} has no docstring`);
  });
}

if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log(`${pkg.name}: ${room ? 'rooms and docstrings' : 'docstrings (an app: no room rules)'} ok`);
