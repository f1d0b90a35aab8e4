// Reads Playwright's JSON report and prints "<passed> <failed>".
// Skipped tests count as failed: in CI nothing may be skipped.
import { readFileSync } from 'node:fs';

const file = process.argv[2];
let report;
try {
  report = JSON.parse(readFileSync(file, 'utf8'));
} catch (e) {
  console.log(`no test report at ${file}: ${e.message}`);
  process.exit(1);
}
const s = report.stats ?? {};
const passed = (s.expected ?? 0) + (s.flaky ?? 0);
const failed = (s.unexpected ?? 0) + (s.skipped ?? 0);
if ((report.errors ?? []).length > 0) {
  for (const e of report.errors) console.error(`test runner error: ${e.message ?? JSON.stringify(e)}`);
  console.log(`${passed} ${failed + report.errors.length}`);
} else {
  console.log(`${passed} ${failed}`);
}
