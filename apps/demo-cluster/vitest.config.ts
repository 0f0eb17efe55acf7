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
      // Generous: process trees on a loaded 2-core machine (no test asserts on speed).
      testTimeout: 300_000,
      // beforeAll starts a process tree and waits for a leader (up to 3 minutes on a loaded machine).
      hookTimeout: 240_000,
    },
  }),
);
