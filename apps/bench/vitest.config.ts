import { defineConfig, mergeConfig } from 'vitest/config';
import { shared } from '../../vitest.shared.js';

// The run and smoke tests measure real (short) cells: generous limits for a loaded 2-core
// machine where turbo runs every package's tests at once (no test asserts on speed).
export default mergeConfig(defineConfig(shared), defineConfig({ test: { testTimeout: 120_000 } }));
