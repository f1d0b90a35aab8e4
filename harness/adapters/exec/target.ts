/**
 * `--target exec:<command>`: a target in any language, run as a child
 * process that speaks the target protocol. Operations are pipelined: all
 * of a sequence is written before the first observation is read. A target
 * that dies, stops answering or breaks the protocol yields a crash or hang
 * failure (and so a finding), never an exception in the harness; the next
 * session starts a fresh process.
 */
import { InputError } from '../../util/errors.ts';
import type { Op } from '../../ops/catalog.ts';
import type { Observation } from '../../ops/observation.ts';
import type { Topology } from '../../topology/types.ts';
import { applyOne, type RunResult, type Session, type Target, type TargetFailure } from '../target.ts';
import { ChildLines, type Next } from './child.ts';
import { ProtocolError, byeMsg, closeMsg, hello, opMsg, openMsg, parseHello, parseObsMsg, parseOpened, type Hello } from './protocol.ts';
import { canonicalTopology } from '../../topology/canonical.ts';
import { learnTopology } from '../learn.ts';
import { lowerOp, raise } from './lower.ts';

export interface ExecOptions {
  /** Per-operation timeout; a target that exceeds it is hung. */
  timeoutMs?: number;
  /**
   * Time to start: the handshake, and opening a topology. Separate from the
   * per-operation timeout, so that a target slow to start on a loaded
   * machine is not taken for one that hangs.
   */
  startupMs?: number;
}

export interface ExecTarget extends Target {
  dispose(): Promise<void>;
}

const isClosed = (line: string): boolean => {
  try {
    return (JSON.parse(line) as { type?: unknown }).type === 'closed';
  } catch {
    return false;
  }
};

const describe = (n: Next): string => ('eof' in n ? `the target ${n.eof}` : 'timeout' in n ? 'the target did not answer in time' : '');

async function handshake(child: ChildLines, timeoutMs: number): Promise<Hello> {
  child.send(hello());
  const n = await child.next(timeoutMs);
  if (!('line' in n)) throw new ProtocolError(`no hello: ${describe(n)}${child.stderr !== '' ? `; stderr: ${child.stderr.trim().slice(-500)}` : ''}`);
  return parseHello(n.line);
}

export async function openExecTarget(command: string, o: ExecOptions = {}): Promise<ExecTarget> {
  const timeoutMs = o.timeoutMs ?? 3_000;
  const startupMs = Math.max(timeoutMs, o.startupMs ?? 20_000);
  let child = new ChildLines(command);
  let hs: Hello;
  try {
    hs = await handshake(child, startupMs);
  } catch (e) {
    await child.stop(100);
    throw new InputError(`--target exec:${command}`, `a target that completes the protocol handshake (${(e as Error).message})`);
  }
  const { info, capabilities } = hs;
  let fixed = hs.topology === undefined ? undefined : canonicalTopology(hs.topology);

  /** A fresh process after the last one died. */
  const revive = async (): Promise<void> => {
    if (child.alive) return;
    child = new ChildLines(command);
    await handshake(child, startupMs);
  };

  const fail = (kind: TargetFailure['kind'], index: number, message: string): TargetFailure => {
    const f: TargetFailure = { kind, index, message };
    if (child.stderr !== '') f.stderr = child.stderr;
    return f;
  };

  const target: ExecTarget = {
    info,
    capabilities,
    profile: hs.profile ?? null,
    get fixedTopology() {
      return fixed;
    },
    ...(fixed === undefined
      ? {}
      : {
          prepare(asked: Topology): Topology {
            if (JSON.stringify(canonicalTopology(asked)) !== JSON.stringify(fixed)) throw new InputError('topology', `the target's own (${command} says which devices it has)`);
            return fixed!;
          },
        }),
    async open(topology: Topology): Promise<Session> {
      let broken: TargetFailure | null = null;
      try {
        await revive();
        child.stderr = '';
        child.send(openMsg(topology));
        const n = await child.next(startupMs);
        if (!('line' in n)) broken = fail('timeout' in n ? 'hang' : 'crash', 0, `while opening the topology, ${describe(n)}`);
        else parseOpened(n.line);
      } catch (e) {
        broken = fail('crash', 0, `protocol: ${(e as Error).message}`);
      }
      if (broken !== null) child.kill();
      /** Sequence numbers run on across run() calls of one session. */
      let seq = 0;
      /** Sends operations, pipelined, and reads their observations back in order. */
      const exchange = async (ops: readonly Op[]): Promise<RunResult> => {
        const observations: Observation[] = [];
        const first = seq;
        seq += ops.length;
        if (ops.length === 0) return { observations };
        child.send(ops.map((op, i) => opMsg(first + i, op)).join('\n'));
        for (let i = 0; i < ops.length; i++) {
          const n = await child.next(timeoutMs);
          if (!('line' in n)) {
            child.kill();
            return { observations, failure: fail('timeout' in n ? 'hang' : 'crash', i, describe(n)) };
          }
          try {
            observations.push(parseObsMsg(n.line, first + i));
          } catch (e) {
            child.kill();
            return { observations, failure: fail('crash', i, `protocol: ${(e as Error).message}`) };
          }
        }
        return { observations };
      };
      const session: Session = {
        apply: (op) => applyOne(session, op),
        async run(ops: readonly Op[]): Promise<RunResult> {
          if (broken !== null) return { observations: [], failure: broken };
          if (!hs.configOverBus) return exchange(ops);
          // Config operations go as the bus accesses of their mechanism; a failure is placed at the operation it belongs to.
          const plan = ops.map((op) => lowerOp(topology, op));
          const wire = plan.flatMap((p) => ('wire' in p ? p.wire : []));
          const r = await exchange(wire);
          const observations = raise(plan, r.observations);
          if (r.failure === undefined) return { observations };
          return { observations, failure: { ...r.failure, index: observations.length } };
        },
        async close(): Promise<void> {
          if (!child.alive) return;
          child.send(closeMsg());
          const n = await child.next(timeoutMs);
          // A target that does not acknowledge the close is not trusted with the next session.
          if (!('line' in n) || !isClosed(n.line)) child.kill();
        },
      };
      return session;
    },
    async dispose(): Promise<void> {
      child.send(byeMsg());
      await child.stop(1000);
    },
  };
  // A target of its own devices: what isoroot does not know of them is learned from it now.
  if (fixed !== undefined) fixed = canonicalTopology(await learnTopology(target, fixed));
  return target;
}
