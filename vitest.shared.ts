/**
 * The vitest settings every package shares: tests run against `src` (the `@synod/source`
 * export condition), and each run writes a JSON report to `.test-results/vitest.json`, which
 * `.ci/run` sums into its one `tests: N passed, M failed` line.
 */
import type { ViteUserConfig } from 'vitest/config';

export const shared: ViteUserConfig = {
  resolve: { conditions: ['@synod/source'] },
  ssr: { resolve: { conditions: ['@synod/source'] } },
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    reporters: ['default', ['json', { outputFile: '.test-results/vitest.json' }]],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
};
