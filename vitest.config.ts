import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: real servers and child processes per test file; keep files from starving each other.
    maxWorkers: 2,
    // Under CI also a JSON report, from which .ci/run prints its closing 'N passed, N failed' line
    // and the slowest files.
    reporters: process.env.APIARY_TEST_REPORT ? ['default', ['json', { outputFile: process.env.APIARY_TEST_REPORT }]] : ['default'],
    // `pnpm vitest run --project unit` (or integration, e2e) runs one level.
    projects: [
      // Pure logic beside the code: no server, no child process, no socket.
      { extends: true, test: { name: 'unit', include: ['packages/*/src/**/*.test.ts'] } },
      // Packages together in this process over real parts: nats-server, sshd, SQLite, HTTP.
      { extends: true, test: { name: 'integration', include: ['test/integration/**/*.test.ts', 'test/conformance/**/*.test.ts', 'test/fleet/**/*.test.ts'] } },
      // Every role as its own OS process, driven through the CLIs.
      { extends: true, test: { name: 'e2e', include: ['test/e2e/**/*.test.ts'] } },
    ],
  },
})
