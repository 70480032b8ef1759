import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: real servers and child processes per test file; keep files from starving each other.
    maxWorkers: 2,
    // Under CI also a JSON report, from which .ci/run prints its closing 'N passed, N failed' line.
    reporters: process.env.APIARY_TEST_REPORT ? ['default', ['json', { outputFile: process.env.APIARY_TEST_REPORT }]] : ['default'],
  },
})
