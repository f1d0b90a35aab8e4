/** JUnit XML, the format CI systems (GitHub Actions, GitLab, Jenkins) read test results from. */

export interface TestCase {
  suite: string;
  classname: string;
  name: string;
  seconds: number;
  outcome: 'pass' | 'fail' | 'skip';
  message?: string;
  detail?: string;
}

const esc = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!).replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '');

export function junit(name: string, cases: readonly TestCase[]): string {
  const suites = [...new Set(cases.map((c) => c.suite))];
  const count = (cs: readonly TestCase[], o: TestCase['outcome']): number => cs.filter((c) => c.outcome === o).length;
  const time = (cs: readonly TestCase[]): string => cs.reduce((n, c) => n + c.seconds, 0).toFixed(3);
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>', `<testsuites name="${esc(name)}" tests="${cases.length}" failures="${count(cases, 'fail')}" errors="0" skipped="${count(cases, 'skip')}" time="${time(cases)}">`];
  for (const s of suites) {
    const cs = cases.filter((c) => c.suite === s);
    lines.push(`  <testsuite name="${esc(s)}" tests="${cs.length}" failures="${count(cs, 'fail')}" errors="0" skipped="${count(cs, 'skip')}" time="${time(cs)}">`);
    for (const c of cs) {
      const open = `    <testcase classname="${esc(c.classname)}" name="${esc(c.name)}" time="${c.seconds.toFixed(3)}"`;
      if (c.outcome === 'pass') lines.push(`${open}${c.message !== undefined ? `>\n      <system-out>${esc(c.message)}</system-out>\n    </testcase>` : '/>'}`);
      else if (c.outcome === 'skip') lines.push(`${open}>\n      <skipped message="${esc(c.message ?? '')}"/>\n    </testcase>`);
      else lines.push(`${open}>\n      <failure message="${esc(c.message ?? '')}" type="isoroot">${esc(c.detail ?? '')}</failure>\n    </testcase>`);
    }
    lines.push('  </testsuite>');
  }
  lines.push('</testsuites>');
  return lines.join('\n') + '\n';
}
