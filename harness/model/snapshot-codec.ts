/**
 * A model snapshot as JSON text, so that a model state can be stored and
 * restored across processes (byte arrays become base64, bigints hex).
 */
import type { ModelSnapshot } from './model.ts';

const BYTES = '__bytes';
const BIG = '__bigint';

export function snapshotToJson(s: ModelSnapshot): string {
  return JSON.stringify(s, (_k, v: unknown) =>
    v instanceof Uint8Array ? { [BYTES]: Buffer.from(v).toString('base64') } : typeof v === 'bigint' ? { [BIG]: v.toString(16) } : v,
  );
}

export function snapshotFromJson(text: string): ModelSnapshot {
  return JSON.parse(text, (_k, v: unknown) => {
    if (typeof v !== 'object' || v === null) return v;
    const o = v as Record<string, string>;
    if (BYTES in o) return new Uint8Array(Buffer.from(o[BYTES], 'base64'));
    if (BIG in o) return BigInt('0x' + o[BIG]);
    return v;
  }) as ModelSnapshot;
}
