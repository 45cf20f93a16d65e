import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 180_000,
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'] },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          // One local broker for all integration files, started by the same code as `modestream broker start`.
          globalSetup: ['test/global-setup.ts'],
          // Two cores: files run one at a time so process kills and broker restarts do not starve each other.
          fileParallelism: false,
          testTimeout: 600_000,
        },
      },
    ],
  },
});
