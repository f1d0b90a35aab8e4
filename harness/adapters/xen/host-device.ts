/**
 * The host devices behind Xen's vPCI. The agent emulates each as the
 * model's endpoint (personalities/endpoint.ts): its configuration space is
 * the model's reset image with the model's write masks, its BARs hold the
 * endpoint's register file, its ROM the endpoint's bytes. Xen's vPCI sits
 * between the domain and that device, so where an observation differs from
 * the model's prediction it is vPCI's doing (or the shim's), never the
 * device's.
 */
import { createFunction } from '../../model/personalities/index.ts';
import { slotsOf } from '../../model/slots.ts';
import { ROM_REGION } from '../../model/bar.ts';
import type { Topology } from '../../topology/types.ts';
import { bytesToHex } from '../../util/hex.ts';

export interface HostEndpoint {
  /** The agent's words for it (`dev add ... endpoint <description>`, agent.c). */
  description: string;
  /** The config offsets of its memory BAR registers (both halves of a 64-bit one). */
  memoryBarRegisters: number[];
}

/** One endpoint of the topology as the model builds it, for the agent. */
export function hostEndpoint(t: Topology, id: string): HostEndpoint {
  const slot = slotsOf(t).find((s) => s.spec.id === id);
  if (slot === undefined || slot.spec.kind !== 'endpoint') throw new Error(`no endpoint ${id} in the topology`);
  const fn = createFunction(slot.spec, slot.root, slot.uid, slot.multifunction);
  const layout = fn.cfg.layout();
  const words: string[] = [];
  const memoryBarRegisters: number[] = [];
  for (const b of fn.bars) {
    if (b === undefined) continue;
    if (b.region === ROM_REGION) words.push(`rom=0x${b.size.toString(16)}`);
    else words.push(`bar${b.region}=0x${b.size.toString(16)},${b.kind}${b.prefetch ? ',pref' : ''}`);
    if (b.kind === 'mem32' || b.kind === 'mem64') memoryBarRegisters.push(...(b.kind === 'mem64' ? [b.reg, b.reg + 4] : [b.reg]));
  }
  words.push(`uid=${slot.uid}`, 'regs=endpoint', `cfg=${bytesToHex(layout.reset)}`, `wmask=${bytesToHex(layout.wmask)}`, `w1c=${bytesToHex(layout.w1cmask)}`);
  return { description: words.join(' '), memoryBarRegisters };
}
