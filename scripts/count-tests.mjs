#!/usr/bin/env node
// Sums the vitest JSON reports of every workspace package into one line:
//   tests: N passed, M failed
// A package that has a test script but wrote no report counts as one failed test, so a crash
// before vitest could report never passes silently. Extra results (e.g. simulator runs) can be
// added as JSON files { "passed": n, "failed": m, "name": "..." } in .test-results/extra-*.json.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

let passed = 0;
let failed = 0;
const lines = [];
for (const group of ['packages', 'apps']) {
  if (!existsSync(group)) continue;
  for (const dir of readdirSync(group)) {
    const pkgDir = join(group, dir);
    const pkgFile = join(pkgDir, 'package.json');
    if (!existsSync(pkgFile)) continue;
    const pkg = JSON.parse(readFileSync(pkgFile, 'utf8'));
    if (!pkg.scripts?.test) continue;
    const report = join(pkgDir, '.test-results', 'vitest.json');
    if (!existsSync(report)) {
      failed += 1;
      lines.push(`${pkg.name}: no test report (the test run crashed or did not start)`);
      continue;
    }
    const r = JSON.parse(readFileSync(report, 'utf8'));
    const p = r.numPassedTests ?? 0;
    // Failed tests, plus suites that failed to load (they contain no counted test).
    let f = r.numFailedTests ?? 0;
    for (const s of r.testResults ?? []) {
      if (s.status === 'failed' && (s.assertionResults ?? []).length === 0) f += 1;
    }
    passed += p;
    failed += f;
    lines.push(`${pkg.name}: ${p} passed, ${f} failed`);
  }
}
if (existsSync('.test-results')) {
  for (const f of readdirSync('.test-results')) {
    if (!f.startsWith('extra-') || !f.endsWith('.json')) continue;
    const r = JSON.parse(readFileSync(join('.test-results', f), 'utf8'));
    passed += r.passed ?? 0;
    failed += r.failed ?? 0;
    lines.push(`${r.name ?? f}: ${r.passed ?? 0} passed, ${r.failed ?? 0} failed`);
  }
}
for (const l of lines) console.log(`  ${l}`);
console.log(`tests: ${passed} passed, ${failed} failed`);
