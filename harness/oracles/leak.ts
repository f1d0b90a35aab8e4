/**
 * leak: state that outlives its owner.
 * - a BAR mapping after its BAR moved or was disabled, or its device was
 *   unplugged or reset;
 * - a DMA translation after unmap or detach; a PASID after free or unbind;
 * - data written through one root readable through another, or DMA that
 *   lands in another root's memory;
 * - an MSI or MSI-X message after the function disabled it.
 */
import { showOp } from '../ops/codec.ts';
import { routedIn, type Op } from '../ops/catalog.ts';
import { hex } from '../util/hex.ts';
import { ownerOf } from '../topology/types.ts';
import { sameData, sameDelivery } from './compare.ts';
import { devLabel, whereLabel } from './labels.ts';
import { accessOf, regionIndex, type Oracle, type StepView } from './oracle.ts';
import { specRule, type Finding } from './finding.ts';
import type { RuleId } from '../spec/rules.ts';
import type { Model } from '../model/model.ts';

const leak = (v: StepView, signature: string, message: string, rule: RuleId): Finding => ({ kind: 'leak', severity: 'violation', index: v.index, signature, message, rule: specRule(rule) });

function memoryOwners(m: Model): number[] {
  const t = m.topology;
  return t.roots.map((_, r) => r).filter((r) => ownerOf(t, r, 'memory') === r);
}

/** Another root's RAM that holds exactly the bytes observed (and something was written there). */
function otherRootHolding(m: Model, exclude: number, addr: number, bytes: Uint8Array): number | null {
  if (bytes.every((b) => b === 0)) return null;
  for (const r of memoryOwners(m)) {
    if (r === exclude) continue;
    const ram = m.ramOf(r);
    if (ram.contains(addr, bytes.length) && sameData(ram.read(addr, bytes.length), bytes)) return r;
  }
  return null;
}

const valueBytes = (v: bigint, size: number): Uint8Array => Uint8Array.from({ length: size }, (_, i) => Number((v >> BigInt(8 * i)) & 0xffn));

/** The BARs of the access's space that decoded the address before and do not now, as "dev BAR n"; null if none. */
function staleDecoder(m: Model, op: Op, acc: { space: 'memory' | 'io'; addr: number }): string | null {
  const root = 'root' in op ? op.root : -1;
  const found: string[] = [];
  for (const [id, slot] of m.devices) {
    const fn = slot.fn;
    if (fn === null || ownerOf(m.topology, fn.root, acc.space) !== ownerOf(m.topology, root, acc.space)) continue;
    fn.bars.forEach((b, r) => {
      if (b !== undefined && (b.kind === 'io') === (acc.space === 'io') && fn.decodedBefore(r, acc.addr) && !m.decodesNow(id, r, acc.addr)) found.push(`${devLabel(m, id)} ${r === 6 ? 'ROM' : `BAR ${r}`}`);
    });
  }
  return found.length === 0 ? null : found.join(' or ');
}

export function leakOracle(): Oracle {
  let attachedEver: Set<string> | null = null;

  return {
    step(v: StepView): Finding[] {
      const { op, observed: o, predicted: p, model: m } = v;
      attachedEver ??= new Set([...m.devices.values()].filter((d) => d.spec.domain !== undefined).map((d) => d.spec.id));
      if (op.op === 'dma.attach' && p.status === 'ok') attachedEver.add(op.dev);
      const out: Finding[] = [];

      // A mapping that outlived its placement.
      const acc = accessOf(op);
      if (acc !== null && v.observes.delivery && o.to?.dev !== undefined && !sameDelivery(o.to, p.to)) {
        const r = regionIndex(o.to.region);
        const fn = m.fnOf(o.to.dev);
        if (r >= 0 && fn !== null && !m.decodesNow(o.to.dev, r, acc.addr) && fn.decodedBefore(r, acc.addr)) {
          const why = !m.isPresent(o.to.dev) ? 'its device was unplugged' : 'its BAR moved, was disabled or was reset';
          out.push(leak(v, `leak:${acc.space}:stale-mapping`, `${showOp(op)} reached ${whereLabel(m, o.to)}, a mapping that should be gone: ${why}`, 'isolation.stale-mapping'));
        }
      }

      // A target that does not say who answered, answering where nothing decodes now but a BAR of its
      // root did before (it moved, was disabled or reset): nothing else can have answered there.
      if (acc !== null && !v.observes.delivery && v.observes.aborts && p.status === 'ma' && o.status !== 'ma' && o.source === undefined) {
        const stale = staleDecoder(m, v.op, acc);
        if (stale !== null)
          out.push(leak(v, `leak:${acc.space}:stale-mapping`, `${showOp(op)} was answered (${o.status}) where nothing decodes now but ${stale} did: a mapping that should be gone (its BAR moved, was disabled or was reset)`, 'isolation.stale-mapping'));
      }

      // Translations that outlived unmap, detach, unbind or free.
      if (routedIn(op, 'dma') && p.status === 'fault' && o.status === 'ok') {
        const dev = devLabel(m, op.dev);
        const ctx = op.pasid === undefined ? null : m.pasidContextOf(op.dev);
        const fn = m.fnOf(op.dev);
        const domain = fn === null ? undefined : m.attachedDomain(op.dev);
        const dmaOwner = fn === null ? -1 : ownerOf(m.topology, fn.root, 'dma');
        if (p.reason === 'pasid-freed') out.push(leak(v, 'leak:pasid:after-free', `PASID ${op.pasid} of ${dev} still translates after it was freed`, 'isolation.stale-translation'));
        else if (p.reason === 'pasid-unbound' && ctx !== null && op.pasid !== undefined && ctx.wasBound(op.dev, op.pasid))
          out.push(leak(v, 'leak:pasid:after-unbind', `PASID ${op.pasid} of ${dev} still translates after it was unbound`, 'isolation.stale-translation'));
        else if (p.reason === 'iova-unmapped' && op.pasid === undefined && domain !== undefined && m.domainsOf(dmaOwner)[domain]?.wasUnmapped(op.iova))
          out.push(leak(v, 'leak:dma:after-unmap', `IOVA ${hex(op.iova)} of domain ${domain} still translates for ${dev} after it was unmapped`, 'isolation.stale-translation'));
        else if (p.reason === 'no-domain' && attachedEver.has(op.dev)) out.push(leak(v, 'leak:dma:after-detach', `${dev} still reaches memory by DMA after it was detached from its IOMMU domain`, 'isolation.stale-translation'));
      }

      // Data that crosses roots.
      if (v.observes.delivery && o.to?.region === 'ram' && p.to?.region === 'ram' && o.to.root !== p.to.root) {
        const dma = routedIn(op, 'dma');
        out.push(leak(v, `leak:${dma ? 'dma' : 'memory'}:cross-root-memory`, `${showOp(op)} landed in ${whereLabel(m, o.to)} instead of ${whereLabel(m, p.to)}: memory crosses roots`, dma ? 'isolation.dma' : 'isolation.memory'));
      } else if (op.op === 'mmio.read' && p.to?.region === 'ram' && o.value !== undefined && p.value !== undefined && o.value !== p.value) {
        const from = otherRootHolding(m, p.to.root, op.addr, valueBytes(o.value, op.size));
        if (from !== null) out.push(leak(v, 'leak:memory:cross-root-data', `root ${op.root} read ${hex(o.value)} at ${hex(op.addr)}, which is what root ${from}'s RAM holds there: data written through root ${from} is readable through root ${op.root}`, 'isolation.memory'));
      } else if (op.op === 'dma.read' && p.status === 'ok' && p.to?.region === 'ram' && o.data !== undefined && !sameData(o.data, p.data)) {
        const from = otherRootHolding(m, p.to.root, p.to.offset ?? 0, o.data);
        if (from !== null) out.push(leak(v, 'leak:dma:cross-root-data', `${devLabel(m, op.dev)} read by DMA what root ${from}'s RAM holds at ${hex(p.to.offset ?? 0)}: data written through root ${from} is readable through root ${p.to.root}`, 'isolation.dma'));
      }

      // Messages after disable.
      if (v.observes.irqs) {
        for (const oi of o.irqs ?? []) {
          if ((oi.kind !== 'msi' && oi.kind !== 'msix') || oi.dev === undefined) continue;
          if ((p.irqs ?? []).some((x) => x.dev === oi.dev && x.kind === oi.kind)) continue;
          const fn = m.fnOf(oi.dev);
          if (fn === null) continue;
          const enabled = oi.kind === 'msi' ? fn.msiEnabled() : fn.msixEnabled();
          if (!enabled) out.push(leak(v, `leak:${oi.kind}:after-disable`, `${devLabel(m, oi.dev)} sent an ${oi.kind.toUpperCase()} message although ${oi.kind.toUpperCase()} is disabled`, 'isolation.stale-message'));
        }
      }
      return out;
    },
  };
}
