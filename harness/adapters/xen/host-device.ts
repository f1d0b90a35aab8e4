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

/** The agent's words for one endpoint (`dev add ... endpoint <description>`, agent.c). */
export function hostEndpoint(t: Topology, id: string): string {
  const slot = slotsOf(t).find((s) => s.spec.id === id);
  if (slot === undefined || slot.spec.kind !== 'endpoint') throw new Error(`no endpoint ${id} in the topology`);
  const fn = createFunction(slot.spec, slot.root, slot.uid, slot.multifunction);
  const layout = fn.cfg.layout();
  const words: string[] = [];
  for (const b of fn.bars) {
    if (b === undefined) continue;
    if (b.region === ROM_REGION) words.push(`rom=0x${b.size.toString(16)}`);
    else words.push(`bar${b.region}=0x${b.size.toString(16)},${b.kind}${b.prefetch ? ',pref' : ''}`);
  }
  words.push(`uid=${slot.uid}`, 'regs=endpoint', `cfg=${bytesToHex(layout.reset)}`, `wmask=${bytesToHex(layout.wmask)}`, `w1c=${bytesToHex(layout.w1cmask)}`);
  return words.join(' ');
}

/** The config offsets of an endpoint's memory BAR registers (both halves of a 64-bit one), as the model lays them out. */
export function memoryBarRegisters(t: Topology, id: string): number[] {
  const slot = slotsOf(t).find((s) => s.spec.id === id)!;
  const fn = createFunction(slot.spec, slot.root, slot.uid, slot.multifunction);
  return fn.bars.flatMap((b) => (b === undefined || b.kind === 'io' || b.kind === 'rom' ? [] : b.kind === 'mem64' ? [b.reg, b.reg + 4] : [b.reg]));
}
