/** The isoroot command line: exit codes, error messages, and the fuzz → check → explain loop. */
import { test, expect } from '@playwright/test';
import { requireProgram } from './require.ts';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { isoroot } from './cli-run.ts';

const PY = `python3 ${join(import.meta.dirname, '..', 'harness', 'adapters', 'exec', 'example', 'endpoint_target.py')}`;


test.describe('usage errors exit 2 and say what was wrong', () => {
  for (const [args, message] of [
    [[], /usage: isoroot <command>/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['fuzz', '--runs', 'abc'], /--runs must be an integer in \[1, 1000000000\], got "abc"/],
    [['fuzz', '--bogus'], /unknown option --bogus \(see isoroot fuzz --help\)/],
    [['fuzz', '--mutant', 'nope'], /--mutant: one of shared-io-space, global-dma/],
    [['fuzz', '--target', 'qemu9'], /--target must be model \| exec:<command> \| qemu\[:q35\|pc\] \| vfio-user:SOCKET\[,SOCKET\.\.\.\] \| xen-vpci\[:hwdom\|guest\] \| vfio-guest, got "qemu9"/],
    [['fuzz', '--target', 'vfio-user:a.sock,'], /--target vfio-user: needs socket paths separated by commas/],
    [['fuzz', '--target', 'vfio-user:/nonexistent/a.sock'], /--target vfio-user: no socket at \/nonexistent\/a\.sock/],
    [['fuzz', '--target', 'vfio-user:/dev/null', '--contract', 'memory=maybe'], /--contract takes kind=shared\|isolated pairs/],
    [['fuzz', '--target', 'model', '--contract', 'io=shared'], /--contract applies to --target vfio-user only/],
    [['fuzz', '--target', 'vfio-user:/dev/null', '--workers', '2'], /a vfio-user device serves one client at a time/],
    [['serve', 'vfio-user', '--socket-dir', '/tmp'], /missing --topology FILE/],
    [['serve', 'vfio-user', '--topology', 'corpora/vfio-user/devices.json', '--socket-dir', '/etc/passwd/vfu'], /--socket-dir \/etc\/passwd\/vfu: a directory where the sockets can be made \(ENOTDIR/],
    [['serve', 'nbd', '--topology', 'x', '--socket-dir', '/tmp'], /the protocol first: isoroot serve vfio-user/],
    [['proxy', '--listen', 'a.sock'], /missing --connect/],
    [['fuzz', '--target', 'qemu:i440'], /--target qemu:<machine> with a machine of q35, pc, got "qemu:i440"/],
    [['fuzz', '--qemu', '/usr/bin/qemu-system-x86_64'], /--qemu applies to --target qemu or vfio-guest only/],
    [['check', 't.jsonl', '--qemu', 'x'], /--qemu needs --target/],
    [['fuzz', '--target', 'exec:', '--runs', '1'], /--target exec: needs a command/],
    [['check'], /missing TRACE/],
    [['check', '/nonexistent/t.jsonl'], /\/nonexistent\/t\.jsonl: a readable trace file/],
    [['explain', 'a', 'b'], /one TRACE only/],
    [['fuzz', '--resume', '/tmp/x', '--runs', '5'], /--resume takes the campaign's options from RUN_DIR\/campaign.json: leave out --runs/],
    [['fuzz', '--resume', '/nonexistent/run'], /\/nonexistent\/run: a campaign run directory to resume/],
    [['fuzz', '--runs', '5', '--budget', '1m'], /give --runs or --budget, not both/],
    [['fuzz', '--budget', 'soon'], /--budget must be a duration such as 90s, 10m or 2h, got "soon"/],
    [['fuzz', '--shard', '2/2'], /--shard must be i\/n with 0 <= i < n, got "2\/2"/],
    [['gate', '--target', 'model'], /--corpus DIR is required/],
    [['report', '/nonexistent/run'], /\/nonexistent\/run: a campaign run directory/],
    [['merge', '/tmp/a'], /--out RUN_DIR is required/],
    [['corpus', 'list'], /--corpus DIR is required/],
    [['fuzz', '--profile', 'qemu-9'], /--profile: a built-in profile \(isoroot-server, linux-vfio-pci, qemu-11, qemu-7\.2, xen-vpci-guest, xen-vpci-hwdom\) or a profile file, got "qemu-9"/],
    [['fuzz', '--known', '/nonexistent/corpus'], /--known \/nonexistent\/corpus: no such folder \(a corpus folder, or none\)/],
    [['fuzz', '--server', 'x {socket}'], /--server applies to --target vfio-user/],
    [['rules', 'header.nope'], /"header\.nope" is neither a rule nor a choice/],
    [['rules', 'header.bar', '--profile', 'qemu-7.2'], /give either IDs or --profile, not both/],
  ] as const) {
    test(`isoroot ${args.join(' ') || '(nothing)'}`, () => {
      const r = isoroot(...args);
      expect(r.code).toBe(2);
      expect(r.out + r.err).toMatch(message);
    });
  }
});

test('every command has --help: the commands the top-level help lists, each with its usage, summary and options', () => {
  const top = isoroot('--help');
  expect(top.code).toBe(0);
  // The list comes from the CLI's command table, so a new command is checked here without editing this test.
  const listed = [...top.out.split('commands:')[1].split('\n\n')[0].matchAll(/^ {2}([a-z]+) +(.+)$/gm)].map((m) => ({ name: m[1], summary: m[2] }));
  expect(listed.map((c) => c.name)).toEqual(expect.arrayContaining(['fuzz', 'check', 'explain', 'report', 'gate', 'corpus', 'merge', 'import', 'serve', 'proxy', 'rules']));
  for (const c of listed) {
    const r = isoroot(c.name, '--help');
    expect(r.code, `isoroot ${c.name} --help`).toBe(0);
    expect(r.out).toContain(`usage: isoroot ${c.name}`);
    expect(r.out).toContain(c.summary);
    // An option the usage line names is documented below it.
    const usage = r.out.split('\n').find((l) => l.startsWith(`usage: isoroot ${c.name}`))!;
    for (const o of usage.matchAll(/--([a-z][a-z-]*)/g)) expect(r.out.split('\n').filter((l) => l.includes(`--${o[1]}`)).length, `${c.name}: --${o[1]} documented`).toBeGreaterThanOrEqual(2);
    const bad = isoroot(c.name, '--no-such-option');
    expect(bad.code).toBe(2);
    expect(bad.out + bad.err).toMatch(new RegExp(`see isoroot ${c.name} --help`));
  }
  // The options that decide what a verdict rests on are where a user looks for them.
  const fuzz = isoroot('fuzz', '--help').out;
  for (const o of ['--profile P', '--known DIR', '--server CMD']) expect(fuzz).toContain(o);
  expect(fuzz).toMatch(/none: the specifications alone/);
  expect(isoroot('check', '--help').out).toMatch(/--known DIR .*none: fail on them/);
});

test('a target that cannot start is a usage error naming it; no run directory is left, and the same --out works next time', () => {
  const out = join(mkdtempSync(join(tmpdir(), 'isoroot-cli-')), 'run');
  const r = isoroot('fuzz', '--target', 'exec:python3 /nonexistent/target.py', '--runs', '3', '--workers', '1', '--out', out);
  expect(r.code, r.out + r.err).toBe(2);
  expect(r.err).not.toMatch(/internal error|at .*\.ts:\d+/);
  expect(r.err).toMatch(/isoroot fuzz: .*exec:python3 \/nonexistent\/target\.py/);
  expect(existsSync(out)).toBe(false);
  const again = isoroot('fuzz', '--target', `exec:${PY}`, '--runs', '3', '--workers', '1', '--seed', '1', '--out', out);
  expect(again.code, again.out + again.err).toBe(0);
  expect(existsSync(join(out, 'campaign.json'))).toBe(true);
});

test('isoroot rules prints each rule with its section, each choice with its options, and checks a profile file', () => {
  const all = isoroot('rules');
  expect(all.code).toBe(0);
  expect(all.out).toMatch(/^header\.bar\n {2}.*\n {2}rests on: PCI 3\.0 §6\.2\.5\.1$/m);
  expect(all.out).toMatch(/^memory\.unassigned-read \(choice\)$/m);
  expect(all.out).toMatch(/profiles: isoroot-server, linux-vfio-pci, qemu-11, qemu-7\.2/);
  const one = isoroot('rules', 'dma-map.alignment');
  expect(one.out).toMatch(/page \(the model's default\): refused unless page aligned\n {4}any: accepted at any alignment/);
  expect(one.out).not.toMatch(/header\.bar/);
  const q = isoroot('rules', '--profile', 'qemu-7.2');
  expect(q.out).toMatch(/memory\.unassigned-read: zeros \(softmmu\/memory\.c/);
  expect(q.out).toMatch(/dma-map\.alignment: open/);
  const dir = mkdtempSync(join(tmpdir(), 'isoroot-profile-'));
  const bad = join(dir, 'wide.json');
  // A profile narrows what the specifications allow; an option they do not list is refused, with the path.
  writeFileSync(bad, JSON.stringify({ profile: 'wide', describes: 'x', choices: { 'memory.unassigned-read': { option: 'random', because: 'y' } } }));
  const r = isoroot('rules', '--profile', bad);
  expect(r.code).toBe(2);
  expect(r.err).toContain(`${bad}: profile.choices.memory.unassigned-read.option: expected one of ones, zeros, got "random"`);
});

test('a bad topology file is rejected with the file and the JSON path', () => {
  const dir = mkdtempSync(join(tmpdir(), 'isoroot-cli-'));
  const f = join(dir, 'topo.json');
  writeFileSync(f, JSON.stringify({ roots: [{ bus: 0, busLimit: 255, devices: [{ id: 'a', kind: 'endpoint', slot: 3, bars: [{ kind: 'io', size: 12 }] }] }] }));
  const r = isoroot('fuzz', '--topology', f, '--runs', '1');
  expect(r.code).toBe(2);
  expect(r.err).toContain(`${f}: device a.bars[0].size: a power of two`);
});

test('a clean fuzz run exits 0', () => {
  const dir = mkdtempSync(join(tmpdir(), 'isoroot-cli-'));
  const r = isoroot('fuzz', '--runs', '200', '--seed', '3', '--workers', '1', '--out', join(dir, 'run'));
  expect(r.code).toBe(0);
  expect(r.out).toMatch(/200 sequences, [0-9]+ operations in [0-9.]+ s/);
  expect(r.out).toContain('no findings');
});

test('fuzz on a fixed topology', () => {
  const dir = mkdtempSync(join(tmpdir(), 'isoroot-cli-'));
  const f = join(dir, 'topo.json');
  writeFileSync(f, JSON.stringify({ roots: [{ bus: 0, busLimit: 255, cf8: true, devices: [{ id: 'a', kind: 'endpoint', slot: 3, bars: [{ kind: 'io', size: 16 }] }] }, { bus: 0, busLimit: 255, cf8: true, devices: [{ id: 'b', kind: 'endpoint', slot: 3, bars: [{ kind: 'io', size: 16 }] }] }] }));
  const r = isoroot('fuzz', '--topology', f, '--runs', '2000', '--seed', '4', '--mutant', 'shared-io-space', '--out', join(dir, 'run'));
  expect(r.code).toBe(1);
  expect(r.out).toContain('COLLISION');
});

test('a finding: exit 1, minimal trace on disk, check reproduces it, the clean model does not, explain prints it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'isoroot-cli-'));
  const r = isoroot('fuzz', '--runs', '3000', '--seed', '1', '--workers', '2', '--mutant', 'stale-bar', '--out', dir + '/run');
  expect(r.code).toBe(1);
  const found = join(dir, 'run', 'findings');
  const files = readdirSync(found).filter((f) => f.endsWith('.jsonl'));
  expect(files.length).toBeGreaterThan(0);
  const trace = join(found, files.find((f) => JSON.parse(readFileSync(join(found, f.replace(/\.jsonl$/, '.finding.json')), 'utf8')).signature === 'leak:memory:stale-mapping')!);
  expect(r.out).toContain(`LEAK leak:memory:stale-mapping (run `);
  expect(r.out).toContain(`trace: ${trace}`);
  expect(existsSync(trace)).toBe(true);
  const record = JSON.parse(readFileSync(trace.replace(/\.jsonl$/, '.finding.json'), 'utf8'));
  expect(record).toMatchObject({ kind: 'leak', signature: 'leak:memory:stale-mapping', severity: 'violation', trace: basename(trace) });
  expect(readdirSync(found).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  const c = isoroot('check', trace);
  expect(c.code).toBe(1);
  expect(c.out).toContain('leak:memory:stale-mapping');
  expect(isoroot('check', trace, '--target', 'model', '--mutant', 'stale-bar').code).toBe(1);
  const clean = isoroot('check', trace, '--target', 'model');
  expect(clean.code).toBe(0);
  expect(clean.out).toContain('no violations');
  const e = isoroot('explain', trace);
  expect(e.code).toBe(0);
  expect(e.out).toMatch(/#\s+op\s+root\s+BDF\s+address\s+observation/);
  expect(e.out).toContain('mutant stale-bar');
});

test('check refuses a trace whose steps were never run, naming the line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'isoroot-cli-'));
  const f = join(dir, 'unrun.jsonl');
  const h = { format: 'isoroot-trace', version: 1, topology: { roots: [{ bus: 0, busLimit: 255, devices: [] }] }, target: { name: 'm', version: '1', observes: { delivery: true, irqs: true } }, seed: null, isoroot: '0.1.0', time: 't' };
  writeFileSync(f, `${JSON.stringify(h)}\n{"op":"root.reset","root":0}\n`);
  const r = isoroot('check', f);
  expect(r.code).toBe(2);
  expect(r.err).toContain(`${f}:2: an observation ("obs")`);
  expect(isoroot('check', f, '--target', 'model').code).toBe(0);
});

test('fuzz drives an external target with exec:', () => {
  requireProgram('python3', 'apt-get install python3');
  const dir = mkdtempSync(join(tmpdir(), 'isoroot-cli-'));
  const r = isoroot('fuzz', '--target', `exec:${PY} --bug stale-bar`, '--runs', '2000', '--seed', '5', '--workers', '2', '--out', join(dir, 'run'));
  expect(r.code).toBe(1);
  expect(r.out).toContain('fuzzing exec:');
  expect(r.out).toContain('LEAK leak:memory:stale-mapping');
});

test('a crash finding keeps the op the target died on, so replaying the trace reaches it', () => {
  requireProgram('python3', 'apt-get install python3');
  const dir = mkdtempSync(join(tmpdir(), 'isoroot-cli-'));
  const r = isoroot('fuzz', '--target', `exec:${PY} --crash-after 2`, '--runs', '50', '--seed', '5', '--workers', '1', '--out', join(dir, 'run'));
  expect(r.code).toBe(1);
  // The signature carries what the target said on stderr, numbers taken out.
  expect(r.out).toMatch(/CRASH crash:[a-z.]+:python-endpoint: crashing on purpose at op # \(run 0, shrunk to \d+ ops\)/);
  const found = join(dir, 'run', 'findings');
  // (The target counts the bus accesses it is sent, a config op being one or two: where it dies depends on the ops.)
  for (const f of readdirSync(found).filter((x) => x.endsWith('.jsonl')).slice(0, 2)) {
    const trace = join(found, f);
    const lines = readFileSync(trace, 'utf8').trim().split('\n');
    const last = JSON.parse(lines[lines.length - 1]) as { obs?: unknown; failure?: { kind: string } };
    expect(last.obs).toBeUndefined();
    expect(last.failure?.kind).toBe('crash');
    const replay = isoroot('check', trace, '--target', `exec:${PY} --crash-after 2`);
    expect(replay.code).toBe(1);
    expect(replay.out).toContain(`CRASH at op #${lines.length - 2}`);
  }
});
