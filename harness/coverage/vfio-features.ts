/**
 * The coverage features of a VFIO op (universe.ts VFIO_EVENTS), from the
 * model's prediction: which outcome, which errno, which group rule.
 */
import type { KindsNeeding, OpOf } from '../ops/catalog.ts';
import type { Observation } from '../ops/observation.ts';
import type { Model } from '../model/model.ts';
import { regionInfo } from '../model/vfio/regions.ts';
import { unhandled } from '../ops/exhaustive.ts';

const RULE_FEATURE: Record<string, string> = { 'vfio.group.isolated': 'isolated', 'vfio.group.no-acs': 'no-acs', 'vfio.group.multifunction': 'multifunction' };

export function vfioFeatures(op: OpOf<KindsNeeding<'vfio'>>, p: Observation, m: Model): string[] {
  const ok = p.status === 'ok';
  const e = p.errno ?? '';
  const f = (dim: string, what: string): string => `vfio:${dim}:${what}`;
  switch (op.op) {
    case 'vfio.bind':
      if (p.reason === 'busy') return [f('bind', 'EBUSY')];
      return [f('bind', p.value === 1n ? 'vfio-pci' : p.value === 2n ? 'native' : 'none')];
    case 'vfio.group.members': {
      const g = m.vfio.group(op.dev);
      return g === undefined ? [] : [f('group', RULE_FEATURE[g.rule])];
    }
    case 'vfio.group.open':
      return ok ? [f('group', 'open')] : e === 'EBUSY' || e === 'ENOENT' ? [f('group', `open-${e}`)] : [];
    case 'vfio.group.close':
      return ok ? [f('group', 'close')] : [];
    case 'vfio.group.status':
      if (!ok) return [];
      return [f('group', (p.value ?? 0n) & 2n ? 'in-container' : (p.value ?? 0n) & 1n ? 'viable' : 'not-viable')];
    case 'vfio.container.open':
    case 'vfio.container.close':
      return ok ? [f('container', op.op === 'vfio.container.open' ? 'open' : 'close')] : [];
    case 'vfio.set-container':
      return ok ? [f('container', 'set')] : e === 'EINVAL' || e === 'EPERM' ? [f('container', `set-${e}`)] : [];
    case 'vfio.unset-container':
      return ok ? [f('container', 'unset')] : e === 'EINVAL' || e === 'EBUSY' ? [f('container', `unset-${e}`)] : [];
    case 'vfio.set-iommu':
      return ok ? [f('container', op.type)] : e === 'EINVAL' ? [f('container', 'iommu-EINVAL')] : [];
    case 'vfio.device.open':
      return ok ? [f('device', 'open')] : e === 'ENODEV' || e === 'EINVAL' ? [f('device', `open-${e}`)] : [];
    case 'vfio.device.close':
      return ok ? [f('device', 'close')] : [];
    case 'vfio.device.info':
      return ok ? [f('device', (p.value ?? 0n) & 1n ? 'reset-works' : 'no-reset')] : [];
    case 'vfio.reset':
      return ok ? [f('device', 'reset')] : e === 'EINVAL' ? [f('device', 'reset-EINVAL')] : [];
    case 'vfio.region.info': {
      if (!ok) return e === 'EINVAL' ? [f('region', 'info-EINVAL')] : [];
      const spec = m.vfio.spec(op.dev);
      const r = spec === undefined ? null : regionInfo(spec, op.region);
      return r === null ? [] : [f('region', r.kind === 'none' || r.kind === 'rom' ? 'info-none' : `info-${r.kind}`)];
    }
    case 'vfio.region.read':
    case 'vfio.region.write':
      if (ok) return [f('region', op.op === 'vfio.region.write' ? 'write' : op.via)];
      if (p.reason === 'past-end') return [f('region', 'past-end')];
      if (e === 'EIO' || e === 'EFAULT') return [f('region', 'memory-off')];
      return e === 'EINVAL' ? [f('region', 'EINVAL')] : [];
    case 'vfio.dma.map': {
      if (!ok) return e === 'EEXIST' || e === 'EINVAL' ? [f('map', `map-${e}`)] : [];
      return [f('map', 'map'), ...(m.vfio.mappings(op.container) >= 2 ? [f('map', 'mappings:2+')] : [])];
    }
    case 'vfio.dma.unmap':
      if (!ok) return e === 'EINVAL' ? [f('map', 'unmap-EINVAL')] : [];
      return [f('map', p.value === 0n ? 'unmap-none' : 'unmap')];
    case 'vfio.dma': {
      if (p.reason === 'unreachable') return [f('dma', 'unreachable')];
      const out: string[] = [];
      if (p.status === 'fault') out.push(f('dma', (p.value ?? 0n) !== 0n ? 'partial' : 'fault'));
      else if (ok) out.push(f('dma', 'landed'));
      if (p.status === 'fault' && m.vfio.wasMapped(op.dev, op.iova)) out.push(f('dma', 'after-unmap'));
      if (ok && m.vfio.orphaned(op.dev)) out.push(f('container', 'orphan-dma'));
      return out;
    }
  }
  return unhandled(op);
}
