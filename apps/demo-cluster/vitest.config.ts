import { defineConfig, mergeConfig } from 'vitest/config';
import { shared } from '../../vitest.shared.js';

// The end-to-end suites run real process trees (a supervisor and 3-5 replicas each): build
// dist/ first (global setup) and run the files one after another, which keeps them robust on a
// loaded 2-core machine.
export default mergeConfig(
  defineConfig(shared),
  defineConfig({
    test: {
      globalSetup: ['./test/global-setup.ts'],
      fileParallelism: false,
      testTimeout: 120_000,
    },
  }),
);
