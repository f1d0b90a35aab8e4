/**
 * The fd-passing Unix socket layer under vfio-user
 * (harness/protocol/vfio-user/fd-socket.ts): bytes both ways, large writes
 * that need POLLOUT, a listener with several clients, memfd and eventfd
 * passed with SCM_RIGHTS, errors naming errno, close, the synchronous
 * recvSync/flushSync next to the event loop's own reads, fairness between
 * busy sockets, fd numbers reused at once, and event loop handles that let
 * the process exit once nothing is open.
 */
import { test, expect } from '@playwright/test';
import { spawn } from 'node:child_process';
import { fstatSync, mkdtempSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as libc from '../../harness/protocol/vfio-user/libc.ts';
import { closeFd, eventfdCreate, eventfdSignal, eventfdTake, FdServer, FdSocket, memfdCreate } from '../../harness/protocol/vfio-user/fd-socket.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const FD_SOCKET = join(ROOT, 'harness', 'protocol', 'vfio-user', 'fd-socket.ts');

/** Everything a socket receives, with a way to wait for a given amount. */
class Inbox {
  chunks: Buffer[] = [];
  fds: number[][] = [];
  bytes = 0;
  closes: (Error | undefined)[] = [];
  private waiters: { n: number; resolve: () => void }[] = [];
  constructor(readonly s: FdSocket) {
    s.onData = (chunk, fds) => {
      this.chunks.push(chunk);
      this.fds.push(fds);
      this.bytes += chunk.length;
      this.poke();
    };
    s.onClose = (err) => {
      this.closes.push(err);
      this.poke();
    };
  }
  get data(): Buffer {
    return Buffer.concat(this.chunks);
  }
  get allFds(): number[] {
    return this.fds.flat();
  }
  /** Resolves once n bytes have arrived (or the socket closed). */
  until(n: number): Promise<void> {
    return new Promise((resolve) => {
      this.waiters.push({ n, resolve });
      this.poke();
    });
  }
  private poke(): void {
    this.waiters = this.waiters.filter((w) => {
      if (this.bytes < w.n && this.closes.length === 0) return true;
      w.resolve();
      return false;
    });
  }
}

/** A socket file with nobody behind it, as a crashed server leaves (socket, bind, close). */
function staleSocket(path: string): void {
  const fd = libc.check('socket', libc.socket(libc.AF_UNIX, libc.SOCK_STREAM | libc.SOCK_CLOEXEC, 0));
  const addr = Buffer.alloc(110);
  addr.writeUInt16LE(libc.AF_UNIX, 0);
  addr.write(path, 2);
  libc.check('bind', libc.bind(fd, addr, 2 + Buffer.byteLength(path) + 1), path);
  closeFd(fd);
}

const closed = (s: FdSocket): Promise<Error | undefined> => new Promise((resolve) => (s.onClose = resolve));
const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let dir = '';
test.beforeAll(() => {
  // Unix socket paths are limited to 107 bytes (unix(7)): keep them short, under /tmp.
  dir = mkdtempSync(join(tmpdir(), 'isoroot-fds-'));
});
test.afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('a socket pair carries bytes both ways', async () => {
  const [a, b] = FdSocket.pair();
  const ia = new Inbox(a);
  const ib = new Inbox(b);
  expect(a.fd).not.toBe(b.fd);
  a.send(Buffer.from('hello from a'));
  b.send(new Uint8Array([1, 2, 3, 250]));
  await Promise.all([ib.until(12), ia.until(4)]);
  expect(ib.data.toString()).toBe('hello from a');
  expect([...ia.data]).toEqual([1, 2, 3, 250]);
  expect(ia.allFds).toEqual([]);
  a.close();
  b.close();
});

test('an 8 MiB message sent at once arrives intact and in order', async () => {
  const [a, b] = FdSocket.pair();
  const ib = new Inbox(b);
  const big = Buffer.alloc(8 << 20);
  for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i);
  const tail = Buffer.from('-end-');
  a.send(big);
  // The socket buffer is far smaller than 8 MiB: the rest waits for POLLOUT.
  expect(a.pending).toBeGreaterThan(0);
  a.send(tail);
  await ib.until(big.length + tail.length);
  expect(ib.closes).toEqual([]);
  expect(ib.bytes).toBe(big.length + tail.length);
  expect(ib.data.equals(Buffer.concat([big, tail]))).toBe(true);
  expect(ib.chunks.length).toBeGreaterThan(1);
  expect(a.pending).toBe(0);
  a.close();
  b.close();
});

test('fds queued behind a backlog still arrive after the sender closed its copy', async () => {
  const [a, b] = FdSocket.pair();
  const ib = new Inbox(b);
  const backlog = Buffer.alloc(4 << 20, 0x5a);
  a.send(backlog);
  expect(a.pending).toBeGreaterThan(0);
  const mem = memfdCreate('queued', 4096);
  writeSync(mem, Buffer.from('queued fd'), 0, 9, 100);
  a.send(Buffer.from('F'), [mem]);
  closeFd(mem); // the caller keeps ownership: the queue must hold its own copy
  await ib.until(backlog.length + 1);
  const withFds = ib.fds.map((f, i) => ({ f, i })).filter(({ f }) => f.length > 0);
  expect(withFds).toHaveLength(1);
  const { f, i } = withFds[0];
  // The fd came with the chunk that holds the byte it was sent with.
  expect(ib.chunks[i][ib.chunks[i].length - 1]).toBe('F'.charCodeAt(0));
  const got = Buffer.alloc(9);
  readSync(f[0], got, 0, 9, 100);
  expect(got.toString()).toBe('queued fd');
  closeFd(f[0]);
  a.close();
  b.close();
});

test('a listener accepts several clients at once', async () => {
  const path = join(dir, 'srv.sock');
  writeFileSync(join(dir, 'unrelated'), ''); // the stale-socket cleanup must not touch other files
  const served: string[] = [];
  const server = FdServer.listen(path, (s) => {
    let got = '';
    s.onData = (chunk) => {
      got += chunk.toString();
      if (got.endsWith('\n')) {
        served.push(got.trim());
        s.send(Buffer.from(`echo ${got}`));
      }
    };
  });
  expect(server.path).toBe(path);
  const clients = await Promise.all(Array.from({ length: 8 }, () => FdSocket.connect(path)));
  const inboxes = clients.map((s) => new Inbox(s));
  clients.forEach((s, i) => s.send(Buffer.from(`client ${i}\n`)));
  await Promise.all(inboxes.map((ib, i) => ib.until(`echo client ${i}\n`.length)));
  inboxes.forEach((ib, i) => expect(ib.data.toString()).toBe(`echo client ${i}\n`));
  expect(served.sort()).toEqual(clients.map((_, i) => `client ${i}`).sort());
  clients.forEach((s) => s.close());
  server.close();
  await expect(FdSocket.connect(path)).rejects.toThrow(/ENOENT/); // close unlinked the path

  // A stale socket file (no listener behind it) is replaced by listen.
  staleSocket(path);
  await expect(FdSocket.connect(path)).rejects.toThrow(/ECONNREFUSED/);
  const again = FdServer.listen(path, (s) => s.send(Buffer.from('again')));
  const c = await FdSocket.connect(path);
  const ic = new Inbox(c);
  await ic.until(5);
  expect(ic.data.toString()).toBe('again');
  // ...but a live one is not.
  expect(() => FdServer.listen(path, () => {})).toThrow(/EADDRINUSE/);
  c.close();
  again.close();
});

test('a memfd passed over the socket is a new fd onto the same memory', async () => {
  const [a, b] = FdSocket.pair();
  const ib = new Inbox(b);
  const mem = memfdCreate('dma', 1 << 16);
  expect(fstatSync(mem).size).toBe(1 << 16);
  const ev = eventfdCreate();
  a.send(Buffer.from('M'), [mem, ev]);
  await ib.until(1);
  expect(ib.fds).toHaveLength(1);
  expect(ib.fds[0]).toHaveLength(2); // both fds, in order, with the one byte
  const [got, gotEv] = ib.fds[0];
  expect(got).not.toBe(mem);
  expect(fstatSync(got).size).toBe(1 << 16);
  // Write through one fd, read through the other, at a position (pwrite/pread on a plain fd number).
  expect(writeSync(mem, Buffer.from('through the sender'), 0, 18, 0x1234)).toBe(18);
  const r1 = Buffer.alloc(18);
  expect(readSync(got, r1, 0, 18, 0x1234)).toBe(18);
  expect(r1.toString()).toBe('through the sender');
  writeSync(got, Buffer.from('back'), 0, 4, 0xff00);
  const r2 = Buffer.alloc(4);
  readSync(mem, r2, 0, 4, 0xff00);
  expect(r2.toString()).toBe('back');
  for (const fd of [mem, got, ev, gotEv]) closeFd(fd);
  a.close();
  b.close();
});

test('an eventfd passed over the socket is signalled across', async () => {
  const [a, b] = FdSocket.pair();
  const ib = new Inbox(b);
  const ev = eventfdCreate();
  expect(eventfdTake(ev)).toBe(0n);
  a.send(Buffer.from('E'), [ev]);
  await ib.until(1);
  const [remote] = ib.allFds;
  expect(remote).not.toBe(ev);
  expect(eventfdTake(remote)).toBe(0n);
  eventfdSignal(ev);
  eventfdSignal(ev, 2n);
  expect(eventfdTake(remote)).toBe(3n);
  expect(eventfdTake(remote)).toBe(0n); // the read reset the counter
  eventfdSignal(remote, 7n);
  expect(eventfdTake(ev)).toBe(7n);
  expect(eventfdTake(ev)).toBe(0n);
  closeFd(ev);
  closeFd(remote);
  a.close();
  b.close();
});

test('connecting to a missing path rejects naming the path and ENOENT', async () => {
  const path = join(dir, 'nobody-here.sock');
  const err: Error = await FdSocket.connect(path).then(
    () => {
      throw new Error('connected to a missing path');
    },
    (e: Error) => e,
  );
  expect(err.message).toContain(path);
  expect(err.message).toContain('ENOENT');
  // A socket file with no listener: ECONNREFUSED.
  const stale = join(dir, 'stale.sock');
  staleSocket(stale);
  const refused = await FdSocket.connect(stale).then(
    () => undefined,
    (e: Error) => e,
  );
  expect(refused?.message).toContain(stale);
  expect(refused?.message).toContain('ECONNREFUSED');
  await expect(FdSocket.connect('x'.repeat(200))).rejects.toThrow(/ENAMETOOLONG/);
});

test('closing one end calls onClose once on the other', async () => {
  const [a, b] = FdSocket.pair();
  const bCloses: (Error | undefined)[] = [];
  const aCloses: (Error | undefined)[] = [];
  b.onClose = (e) => bCloses.push(e);
  a.onClose = (e) => aCloses.push(e);
  const got: string[] = [];
  b.onData = (chunk) => got.push(chunk.toString());
  a.send(Buffer.from('last words'));
  a.close();
  a.close();
  a.send(Buffer.from('after close')); // a no-op
  await expect.poll(() => bCloses.length).toBe(1);
  expect(got.join('')).toBe('last words'); // data before the EOF is still delivered
  expect(bCloses).toEqual([undefined]); // orderly EOF
  expect(aCloses).toEqual([undefined]);
  b.send(Buffer.from('to nobody')); // no-op on a closed socket
  b.close();
  await tick(50);
  expect(bCloses).toHaveLength(1);
  expect(aCloses).toHaveLength(1);

  // A peer vanishing with our data unread is an error for the other side, not a SIGPIPE.
  const [c, d] = FdSocket.pair();
  const cClosed = closed(c);
  c.send(Buffer.from('unread'));
  d.close();
  c.send(Buffer.alloc(1 << 20));
  const err = await cClosed;
  expect(err?.message).toMatch(/EPIPE|ECONNRESET/);
});

test('open sockets and listeners hold the event loop, closed ones do not', async () => {
  /** Runs a child; kills it limitMs after it printed `after` (after its start without one), so a slow start is never mistaken for a hang. */
  const child = (code: string, limitMs: number, after?: string): Promise<{ status: number | null; out: string; ms: number; killed: boolean }> => {
    const script = join(dir, `child-${Math.random().toString(36).slice(2)}.ts`);
    writeFileSync(script, `import { FdServer, FdSocket } from ${JSON.stringify(pathToFileURL(FD_SOCKET).href)};\n${code}\n`);
    const t0 = Date.now();
    const p = spawn(process.execPath, ['--import', 'tsx', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let killed = false;
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      timer ??= setTimeout(() => {
        killed = true;
        p.kill('SIGKILL');
      }, limitMs);
    };
    const take = (d: Buffer): void => {
      out += d.toString();
      if (after !== undefined && out.includes(after)) arm();
    };
    p.stdout.on('data', take);
    p.stderr.on('data', take);
    if (after === undefined) arm();
    return new Promise((resolve) => {
      p.on('exit', (status) => {
        clearTimeout(timer);
        resolve({ status, out, ms: Date.now() - t0, killed });
      });
    });
  };
  const exchange = `
const [a, b] = FdSocket.pair();
b.onData = (chunk) => b.send(chunk);
a.onData = (chunk) => {
  console.log('echoed ' + chunk.toString());
  CLOSE
};
a.send(Buffer.from('ping'));
`;
  // A listener, a client, one exchange; then everything but the listener (LEAVE) is closed.
  const served = (leave: boolean): string => `
const path = ${JSON.stringify(join(dir, 'child-'))} + process.pid + '.sock';
const server = FdServer.listen(path, (s) => (s.onData = (chunk) => s.send(chunk)));
void FdSocket.connect(path).then((a) => {
  a.onData = (chunk) => {
    console.log('served ' + chunk.toString());
    a.close();
    ${leave ? '' : 'server.close();'}
  };
  a.send(Buffer.from('hello'));
});
`;
  const [done, stuck, listenerDone, listenerStuck] = await Promise.all([
    child(exchange.replace('CLOSE', 'a.close(); b.close();'), 60_000),
    child(exchange.replace('CLOSE', ''), 3_000, 'echoed ping'), // sockets left open: the process must keep waiting on them
    child(served(false), 60_000),
    child(served(true), 3_000, 'served hello'), // a listener left open holds the process like a net.Server
  ]);
  expect(listenerDone.out).toContain('served hello');
  expect(listenerDone.killed).toBe(false);
  expect(listenerDone.status).toBe(0);
  expect(listenerStuck.out).toContain('served hello');
  expect(listenerStuck.killed).toBe(true);
  console.log(`child that closed its sockets exited on its own after ${done.ms} ms (node + tsx startup included)`);
  expect(done.out).toContain('echoed ping');
  expect(done.killed).toBe(false);
  expect(done.status).toBe(0);
  expect(stuck.out).toContain('echoed ping');
  expect(stuck.killed).toBe(true);
});

test('1000 lockstep ping-pong round trips', async () => {
  const [a, b] = FdSocket.pair();
  b.onData = (chunk) => b.send(chunk);
  let pending = Buffer.alloc(0);
  let count = 0;
  /** Runs `rounds` more round trips; the rate per second. */
  const run = (rounds: number): Promise<number> => {
    const end = count + rounds;
    const t0 = process.hrtime.bigint();
    return new Promise<number>((resolve, reject) => {
      const done = (): void => resolve(rounds / (Number(process.hrtime.bigint() - t0) / 1e9));
      a.onClose = (e) => reject(e ?? new Error('closed'));
      a.onData = (chunk) => {
        pending = Buffer.concat([pending, chunk]);
        while (pending.length >= 4) {
          const n = pending.readUInt32LE(0);
          pending = pending.subarray(4);
          if (n !== count) return reject(new Error(`round ${count} got ${n}`));
          if (++count === end) return done();
          const msg = Buffer.alloc(4);
          msg.writeUInt32LE(count);
          a.send(msg);
        }
      };
      const msg = Buffer.alloc(4);
      msg.writeUInt32LE(count);
      a.send(msg);
    });
  };
  const cold = await run(1000);
  console.log(`fd-socket ping-pong: 1000 round trips in ${((1000 / cold) * 1000).toFixed(1)} ms, ${Math.round(cold)} round trips/s`);
  expect(count).toBe(1000);
  const warm = await run(20_000); // the same, once the JIT has warmed up
  console.log(`fd-socket ping-pong, warm: 20000 round trips in ${((20_000 / warm) * 1000).toFixed(1)} ms, ${Math.round(warm)} round trips/s`);
  expect(count).toBe(21_000);
  a.onClose = () => {};
  a.close();
  b.close();
});

test('recvSync takes bytes the event loop was about to read; its own read then finds nothing and goes on', async () => {
  // Two pairs become readable in the same loop iteration; whichever callback runs first takes the
  // other pair's bytes with recvSync, so the other callback's recvmsg gets EAGAIN.
  const [a1, b1] = FdSocket.pair();
  const [a2, b2] = FdSocket.pair();
  const seen: string[] = [];
  const closes: (Error | undefined)[] = [];
  const sync = (other: FdSocket) => (chunk: Buffer) => {
    seen.push(chunk.toString());
    const r = other.recvSync(1000);
    if (r !== null && r !== 'eof') seen.push(`sync ${r.chunk.toString()}`);
  };
  b1.onData = sync(b2);
  b2.onData = sync(b1);
  b1.onClose = b2.onClose = (e) => closes.push(e);
  a1.send(Buffer.from('one'));
  a2.send(Buffer.from('two'));
  await expect.poll(() => seen.length).toBe(2);
  expect(seen.sort()).toEqual(seen.includes('one') ? ['one', 'sync two'] : ['sync one', 'two']);
  await tick(30);
  expect(seen).toHaveLength(2); // nothing delivered twice
  expect(closes).toEqual([]); // the EAGAIN did not end either socket
  // Both still read what comes next, through the event loop.
  const later: string[] = [];
  b1.onData = b2.onData = (chunk) => later.push(chunk.toString());
  a1.send(Buffer.from('three'));
  a2.send(Buffer.from('four'));
  await expect.poll(() => later.sort().join()).toBe('four,three');
  // recvSync on its own: a timeout is null and leaves the socket open.
  expect(b1.recvSync(20)).toBeNull();
  a1.close();
  expect(b1.recvSync(1000)).toBe('eof');
  await expect.poll(() => closes).toEqual([undefined]);
  for (const s of [a2, b1, b2]) s.close();
});

test('flushSync times out against a peer that does not read; the queue then drains through the event loop', async () => {
  const [a, b] = FdSocket.pair();
  const ib = new Inbox(b);
  const big = Buffer.alloc(4 << 20, 0x33);
  a.send(big);
  expect(a.pending).toBeGreaterThan(0);
  // The reader is this very thread, blocked in flushSync: the socket buffer cannot drain.
  const t0 = Date.now();
  expect(a.flushSync(50)).toBe(false);
  expect(Date.now() - t0).toBeGreaterThanOrEqual(45);
  expect(a.pending).toBeGreaterThan(0);
  await ib.until(big.length);
  expect(ib.bytes).toBe(big.length);
  expect(a.pending).toBe(0);
  expect(a.flushSync(10)).toBe(true); // nothing left to send
  a.close();
  expect(a.flushSync(10)).toBe(false); // closed
  b.close();
});

test('a socket that floods does not starve a ping-pong on another socket', async () => {
  const [fa, fb] = FdSocket.pair();
  const iflood = new Inbox(fb);
  const flood = Buffer.alloc(32 << 20, 0x77);
  fa.send(flood);
  const [a, b] = FdSocket.pair();
  b.onData = (chunk) => b.send(chunk);
  let rounds = 0;
  let floodAtEnd = -1;
  await new Promise<void>((resolve) => {
    a.onData = (chunk) => {
      if (++rounds === 20) {
        floodAtEnd = iflood.bytes;
        return resolve();
      }
      a.send(chunk);
    };
    a.send(Buffer.from('p'));
  });
  // Reads are bounded per wake and the flood's socket buffer is far smaller than 32 MiB:
  // the 20 round trips were done long before the flood was.
  expect(floodAtEnd).toBeLessThan(flood.length);
  await iflood.until(flood.length);
  expect(iflood.bytes).toBe(flood.length);
  for (const s of [a, b, fa, fb]) s.close();
});

test('fd numbers freed by close are reused at once by new sockets', async () => {
  let [a, b] = FdSocket.pair();
  const numbers = new Set<number>();
  for (let i = 0; i < 50; i++) {
    numbers.add(a.fd).add(b.fd);
    const ib = new Inbox(b);
    a.send(Buffer.from(`round ${i}`));
    await ib.until(`round ${i}`.length);
    expect(ib.data.toString()).toBe(`round ${i}`);
    // Close and reopen within one callback-free stretch: the kernel hands out the same numbers.
    a.close();
    b.close();
    [a, b] = FdSocket.pair();
  }
  expect(numbers.size).toBeLessThan(10);
  a.close();
  b.close();
});
