/**
 * The host's end of the guest agent's line protocol (agent.c): requests
 * `<id> <verb> <args>`, replies `<id> ok …`, `<id> err ERRNO step` or
 * `<id> bad message`, in order, so that many may be in flight. A reply
 * that does not parse, or one for another request, breaks the protocol.
 */
import type { Socket } from 'node:net';
import { LineQueue } from '../../util/line-queue.ts';

export type AgentReply = { kind: 'ok'; words: string[] } | { kind: 'err'; errno: string; step: string } | { kind: 'bad'; message: string };

/** The agent broke its protocol, or went away: carried up as a target failure. */
export class AgentLost extends Error {
  override name = 'AgentLost';
  constructor(
    readonly how: 'hang' | 'crash' | 'protocol',
    message: string,
  ) {
    super(message);
  }
}

export class AgentLink {
  private readonly lines = new LineQueue();
  private next = 1;

  constructor(
    private readonly socket: Socket,
    private readonly timeoutMs: number,
  ) {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => this.lines.feed(d));
    socket.on('close', () => this.lines.end('the agent channel closed'));
    socket.on('error', (e) => this.lines.end(`the agent channel failed: ${e.message}`));
  }

  /** The agent's first line, `ready isoroot-vfio-agent 1 <release>`. */
  async ready(timeoutMs: number): Promise<string> {
    const n = await this.lines.next(timeoutMs);
    if ('timeout' in n) throw new AgentLost('hang', `no ready line from the guest agent within ${timeoutMs} ms`);
    if ('eof' in n) throw new AgentLost('crash', n.eof);
    if (!n.line.startsWith('ready isoroot-vfio-agent ')) throw new AgentLost('protocol', `the agent's first line: "ready isoroot-vfio-agent …", got "${n.line.slice(0, 120)}"`);
    return n.line;
  }

  /** Sends requests at once and reads their replies in order. */
  async batch(requests: readonly string[], timeoutMs = this.timeoutMs): Promise<AgentReply[]> {
    const ids = requests.map(() => String(this.next++));
    this.socket.write(requests.map((r, i) => `${ids[i]} ${r}\n`).join(''));
    const out: AgentReply[] = [];
    for (let i = 0; i < ids.length; i++) {
      const n = await this.lines.next(timeoutMs);
      if ('timeout' in n) throw new AgentLost('hang', `no reply to "${requests[i]}" within ${timeoutMs} ms`);
      if ('eof' in n) throw new AgentLost('crash', `${n.eof} while waiting for "${requests[i]}"`);
      out.push(parseReply(n.line, ids[i], requests[i]));
    }
    return out;
  }

  async one(request: string, timeoutMs = this.timeoutMs): Promise<AgentReply> {
    return (await this.batch([request], timeoutMs))[0];
  }

  close(): void {
    this.socket.destroy();
  }
}

function parseReply(line: string, id: string, request: string): AgentReply {
  const words = line.split(' ');
  if (words[0] !== id) throw new AgentLost('protocol', `agent reply: id ${id} first (for "${request}"), got "${line.slice(0, 120)}"`);
  if (words[1] === 'ok') return { kind: 'ok', words: words.slice(2).filter((w) => w !== '') };
  if (words[1] === 'err' && words.length >= 3) return { kind: 'err', errno: words[2], step: words[3] ?? '' };
  if (words[1] === 'bad') return { kind: 'bad', message: words.slice(2).join(' ') };
  throw new AgentLost('protocol', `agent reply: "ok", "err" or "bad" after the id (for "${request}"), got "${line.slice(0, 120)}"`);
}
