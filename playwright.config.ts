import { defineConfig } from '@playwright/test';

// The suites need no browser: Playwright is the test runner.
export default defineConfig({
  testDir: 'suites',
  workers: 2,
  fullyParallel: true,
  timeout: 180_000,
  reporter: [
    ['list'],
    ['json', { outputFile: 'reports/tests/results.json' }],
    ['html', { open: 'never', outputFolder: 'reports/tests/html' }],
  ],
  outputDir: 'reports/tests/artifacts',
});
