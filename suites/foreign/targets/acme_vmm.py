#!/usr/bin/env python3
"""A foreign isoroot target: "acme-vmm", written from the PCI specifications
and the target protocol (docs/target-protocol.md) alone, apart from isoroot's
model, to try isoroot on devices and choices it did not write.

The target is its own topology: one root per device, every space of every
root isolated, each root with its own RAM and ECAM window. Its device, the
"acme" function (1d1d:0042), is unknown to isoroot: a type 0 header, a
32-bit memory BAR of 4 KiB, a 32-byte IO BAR, a 64-bit prefetchable BAR of
8 KiB, a PM and an MSI capability, and registers of its own at 0x80.

Where the specifications leave a choice, this target chooses (switches):
  --unassigned zeros|ones   what a read nobody claims returns (default zeros)
  --align any|page          DMA mappings of any alignment, or pages only (default any)
  --ro-write refuse|ignore  a config write that reaches read-only bits (default refuse)
  --not-decoding serve|refuse  a region access to a BAR that does not decode (default serve)
  --errno bsd|linux         which errno each refusal carries (default bsd)
and reports refusals by errno, as a VFIO user would see them.

Faults to show that isoroot catches real isolation bugs, not choices:
  --bug shared-io           the roots' IO spaces are one: a port of one root reaches another root's BAR
  --bug stale-bar           a BAR's old place keeps decoding after it moves
  --roots N                 how many roots (default 2)
"""
import json
import sys

ECAM = 0xB0000000
RAM = 0x01000000
ADDR_LIMIT = 1 << 52
ERRNO = {
    "bsd": {"exists": "EEXIST", "not-mapped": "ENOENT", "partial": "EINVAL", "align": "EINVAL", "past-end": "EFAULT",
            "no-region": "ENXIO", "read-only": "EROFS", "not-decoding": "EIO", "too-large": "EMSGSIZE", "config": "EACCES"},
    "linux": {"exists": "EEXIST", "not-mapped": "ENOENT", "partial": "EBUSY", "align": "EINVAL", "past-end": "EINVAL",
              "no-region": "EINVAL", "read-only": "EINVAL", "not-decoding": "EIO", "too-large": "E2BIG", "config": "EINVAL"},
}


def h(n):
    return hex(n)


def num(v):
    return int(v, 16) if isinstance(v, str) else int(v)


def pieces(offset, count):
    """Naturally aligned accesses of at most 4 bytes that cover [offset, offset + count)."""
    o, end = offset, offset + count
    while o < end:
        n = next(k for k in (4, 2, 1) if o % k == 0 and o + k <= end)
        yield o, n
        o += n


class Acme:
    """The acme function: registers and their write masks, built from PCI 3.0 chapter 6."""

    BARS = {0: ("mem32", 0x1000, 0x10), 1: ("io", 0x20, 0x14), 2: ("mem64", 0x2000, 0x18)}

    def __init__(self, dev_id, serial):
        self.id = dev_id
        self.serial = serial
        self.reset()

    def reset(self):
        self.cfg = bytearray(256)
        self.wmask = bytearray(256)
        self.w1c = bytearray(256)
        s, m = self.put, self.mask
        s(0x00, 2, 0x1D1D)
        s(0x02, 2, 0x0042)
        s(0x08, 1, 0x03)
        s(0x09, 3, 0x028000)
        m(0x04, 2, 0x0507)                # IO, memory, bus master, SERR, interrupt disable
        s(0x06, 2, 0x0010)                # a capability list
        m(0x06, 2, 0, 0xF900)
        m(0x0C, 1, 0xFF)                  # cache line size; the latency timer is hardwired
        s(0x10, 4, 0x0)
        m(0x10, 4, 0xFFFFF000)
        s(0x14, 4, 0x1)
        m(0x14, 4, 0xFFFFFFE0)
        s(0x18, 4, 0xC)                   # 64-bit, prefetchable
        m(0x18, 4, 0xFFFFE000)
        m(0x1C, 4, 0xFFFFFFFF)
        s(0x2C, 2, 0x1D1D)
        s(0x2E, 2, 0x0001)
        s(0x34, 1, 0x40)
        m(0x3C, 1, 0xFF)
        s(0x3D, 1, 0x01)
        # PM at 0x40: version 1.2; D0 and D3hot; No_Soft_Reset.
        s(0x40, 2, 0x5001)
        s(0x42, 2, 0x0003)
        s(0x44, 2, 0x0008)
        m(0x44, 2, 0x0103, 0x8000)
        # MSI at 0x50: 64-bit, one vector.
        s(0x50, 2, 0x0005)
        s(0x52, 2, 0x0080)
        m(0x52, 2, 0x0071)
        m(0x54, 4, 0xFFFFFFFC)
        m(0x58, 4, 0xFFFFFFFF)
        m(0x5C, 2, 0xFFFF)
        # The device's own: a serial number (read-only) and scratch.
        s(0x80, 4, self.serial)
        m(0x84, 4, 0xFFFFFFFF)
        self.regs = {0: bytearray(0x1000), 1: bytearray(0x20), 2: bytearray(0x2000)}
        self.regs[0][0:4] = (0xAC3E0000 | self.serial).to_bytes(4, "little")
        self.placed = {}
        self.ghosts = []

    def put(self, off, size, v):
        self.cfg[off:off + size] = (v & ((1 << (8 * size)) - 1)).to_bytes(size, "little")

    def mask(self, off, size, w, c=0):
        self.wmask[off:off + size] = w.to_bytes(size, "little")
        self.w1c[off:off + size] = c.to_bytes(size, "little")

    def get(self, off, size):
        return int.from_bytes(self.cfg[off:off + size], "little")

    # The type 0 header's registers (PCI 3.0 figure 6-1); beyond it, dwords.
    REGISTERS = [(0x00, 2), (0x02, 2), (0x04, 2), (0x06, 2), (0x08, 1), (0x09, 3), (0x0C, 1), (0x0D, 1), (0x0E, 1), (0x0F, 1),
                 (0x10, 4), (0x14, 4), (0x18, 4), (0x1C, 4), (0x20, 4), (0x24, 4), (0x28, 4), (0x2C, 2), (0x2E, 2), (0x30, 4),
                 (0x34, 1), (0x35, 3), (0x38, 4), (0x3C, 1), (0x3D, 1), (0x3E, 1), (0x3F, 1)]

    def register(self, off):
        for start, n in self.REGISTERS:
            if start <= off < start + n:
                return start, n
        return off & ~3, 4

    def touches_read_only(self, off, size, value):
        """A write that reaches a read-only register: one with no writable bit (PCI 3.0 6.1)."""
        for o in range(off, min(off + size, 256)):
            start, n = self.register(o)
            if not any(self.wmask[k] | self.w1c[k] for k in range(start, min(start + n, 256))):
                return True
        return False

    def write(self, off, size, value):
        old_state = self.get(0x44, 2) & 3
        for i in range(size):
            o = off + i
            if o >= 256:
                break
            v = (value >> (8 * i)) & 0xFF
            self.cfg[o] = ((self.cfg[o] & ~self.wmask[o]) | (v & self.wmask[o])) & ~(v & self.w1c[o]) & 0xFF
        # PM: D1 and D2 are not supported; writing them leaves the state.
        if self.get(0x44, 2) & 3 in (1, 2):
            self.put(0x44, 2, (self.get(0x44, 2) & ~3) | old_state)
        # MSI: one vector, so Multiple Message Enable stays 0.
        self.put(0x52, 2, self.get(0x52, 2) & ~0x70)

    def decodes(self):
        """Region -> base, while it decodes: only in D0, with the command register's enable (PCI 3.0 6.2.2, PM 1.2 5.4)."""
        out = {}
        cmd = self.get(0x04, 2)
        if self.get(0x44, 2) & 3 != 0:
            return out
        for r, (kind, size, reg) in self.BARS.items():
            if kind == "io":
                if cmd & 1:
                    out[r] = self.get(reg, 4) & 0xFFFFFFFC
            elif cmd & 2:
                base = self.get(reg, 4) & 0xFFFFFFF0
                if kind == "mem64":
                    base |= self.get(reg + 4, 4) << 32
                if base + size <= ADDR_LIMIT:
                    out[r] = base
        return out


class Root:
    def __init__(self, index, dev, opts):
        self.index = index
        self.dev = dev
        self.opts = opts
        self.ram = bytearray(RAM)
        self.maps = []   # (iova, size, gpa, perm)
        self.dev_domain = None
        self.seq = 0

    def refresh(self):
        d = self.dev
        now = d.decodes()
        for r, base in now.items():
            old = d.placed.get(r)
            if old is None or old[0] != base:
                if old is not None and self.opts.stale_bar:
                    d.ghosts.append((r, old[0], old[1]))
                self.seq += 1
                d.placed[r] = (base, self.seq)
        for r in list(d.placed):
            if r not in now:
                if self.opts.stale_bar:
                    d.ghosts.append((r,) + d.placed[r])
                del d.placed[r]


class Machine:
    def __init__(self, opts):
        self.opts = opts
        self.roots = [Root(i, Acme(f"acme{i}", 0x100 + i), opts) for i in range(opts.roots)]

    def errno(self, why):
        return {"status": "error", "errno": ERRNO[self.opts.errno][why]}

    def unassigned(self, root, size, value):
        o = {"status": "ma", "to": {"root": root}}
        if value is None:
            o["value"] = h(0 if self.opts.unassigned == "zeros" else (1 << (8 * size)) - 1)
        return o

    def config(self, root, bus, devfn, reg, size, value):
        r = self.roots[root]
        if bus != 0 or devfn != 0:
            o = {"status": "ur", "to": {"root": root}}
            if value is None:
                o["value"] = h((1 << (8 * size)) - 1)
            return o
        d = r.dev
        to = {"root": root, "dev": d.id, "region": "cfg", "offset": h(reg)}
        if reg >= 256:
            return {"status": "ok", "value": h((1 << (8 * size)) - 1), "to": to} if value is None else {"status": "ok", "to": to}
        if value is None:
            return {"status": "ok", "value": h(d.get(reg, size)), "to": to}
        if self.opts.ro_write == "refuse" and d.touches_read_only(reg, size, value):
            o = self.errno("config")
            o["to"] = to
            return o
        d.write(reg, size, value)
        r.refresh()
        return {"status": "ok", "to": to}

    def decode(self, root, addr, io):
        """The BAR that answers: the one placed last wins an overlap; with shared-io, any root's IO BAR."""
        roots = self.roots if (io and self.opts.shared_io) else [self.roots[root]]
        best = None
        for r in roots:
            d = r.dev
            cands = [(reg, b, s) for reg, (b, s) in d.placed.items()] + d.ghosts
            for region, base, seq in cands:
                kind, size, _ = Acme.BARS[region]
                if (kind == "io") == io and base <= addr < base + size and (best is None or seq > best[0]):
                    best = (seq, r, region, base)
        return best

    def access(self, root, addr, size, value, io):
        r = self.roots[root]
        if not io and addr + size <= RAM:
            to = {"root": root, "region": "ram", "offset": h(addr)}
            if value is None:
                return {"status": "ok", "value": h(int.from_bytes(r.ram[addr:addr + size], "little")), "to": to}
            r.ram[addr:addr + size] = value.to_bytes(size, "little")
            return {"status": "ok", "to": to}
        if not io and ECAM <= addr < ECAM + (256 << 20):
            off = addr - ECAM
            bus, devfn, reg = (off >> 20) & 0xFF, (off >> 12) & 0xFF, off & 0xFFF
            if size == 8:
                lo = self.config(root, bus, devfn, reg, 4, None if value is None else value & 0xFFFFFFFF)
                hi = self.config(root, bus, devfn, reg + 4, 4, None if value is None else value >> 32)
                if lo["status"] == "error" or hi["status"] == "error":
                    return lo if lo["status"] == "error" else hi
                if value is None:
                    lo["value"] = h(num(lo["value"]) | (num(hi["value"]) << 32))
                return lo
            return self.config(root, bus, devfn, reg, size, value)
        hit = self.decode(root, addr, io)
        if hit is None:
            return self.unassigned(root, size, value)
        _, owner, region, base = hit
        off = addr - base
        regs = owner.dev.regs[region]
        to = {"root": owner.index, "dev": owner.dev.id, "region": f"bar{region}", "offset": h(off)}
        if value is None:
            v = int.from_bytes(regs[off:off + size], "little") if off + size <= len(regs) else 0
            return {"status": "ok", "value": h(v), "to": to}
        if off >= 4 and off + size <= len(regs):
            regs[off:off + size] = value.to_bytes(size, "little")
        return {"status": "ok", "to": to}

    def dma_map(self, root, iova, size, gpa, perm):
        r = self.roots[root]
        if size == 0 or (self.opts.align == "page" and (iova | size | gpa) & 0xFFF):
            return self.errno("align")
        if any(iova < m[0] + m[1] and m[0] < iova + size for m in r.maps):
            return self.errno("exists")
        r.maps.append((iova, size, gpa, perm))
        return {"status": "ok"}

    def dma_unmap(self, root, iova, size):
        r = self.roots[root]
        if size == 0 or (self.opts.align == "page" and (iova | size) & 0xFFF):
            return self.errno("align")
        hit = [m for m in r.maps if iova < m[0] + m[1] and m[0] < iova + size]
        if not hit:
            return self.errno("not-mapped")
        if any(m[0] < iova or m[0] + m[1] > iova + size for m in hit):
            return self.errno("partial")
        r.maps = [m for m in r.maps if m not in hit]
        return {"status": "ok"}

    def region(self, dev_id, region, offset, count, data):
        r = next((x for x in self.roots if x.dev.id == dev_id), None)
        if r is None:
            return {"status": "error", "reason": "no-device"}
        d = r.dev
        if count > 4096:
            return self.errno("too-large")
        if region == 7:
            size = 256
        elif region in Acme.BARS:
            size = Acme.BARS[region][1]
        else:
            return self.errno("no-region")
        if offset + count > size:
            return self.errno("past-end")
        if region == 7:
            out = bytearray()
            to = {"root": r.index, "dev": d.id, "region": "cfg", "offset": h(offset)}
            for o, n in pieces(offset, count):
                if data is None:
                    out += d.get(o, n).to_bytes(n, "little")
                    continue
                v = int.from_bytes(data[o - offset:o - offset + n], "little")
                if self.opts.ro_write == "refuse" and d.touches_read_only(o, n, v):
                    refused = self.errno("config")  # the pieces before it took effect
                    refused["to"] = {"root": r.index, "dev": d.id, "region": "cfg", "offset": h(o)}
                    return refused
                d.write(o, n, v)
                r.refresh()
            return {"status": "ok", "data": out.hex(), "to": to} if data is None else {"status": "ok", "to": to}
        if region not in d.placed and self.opts.not_decoding == "refuse":
            return self.errno("not-decoding")
        # Decoding, the access goes where the BAR is in the root's space (the BAR placed last there answers).
        to = None
        owner, where = r, offset
        if region in d.placed:
            hit = self.decode(r.index, d.placed[region][0] + offset, Acme.BARS[region][0] == "io")
            if hit is not None:
                _, owner, region, base = hit
                where = d.placed.get(region, (base,))[0] + offset - base if owner is r else offset
                to = {"root": owner.index, "dev": owner.dev.id, "region": f"bar{region}", "offset": h(where)}
        regs = owner.dev.regs[region]
        if data is None:
            o = {"status": "ok", "data": bytes(regs[where:where + count]).hex()}
        else:
            lo = max(where, 4)
            if lo < where + count:
                regs[lo:where + count] = data[lo - where:]
            o = {"status": "ok"}
        if to is not None:
            o["to"] = to
        return o

    def apply(self, op):
        k = op["op"]
        root = op.get("root")
        if root is not None and root >= len(self.roots):
            return {"status": "error", "reason": "no-device"}
        if k in ("cfg.read", "cfg.write"):
            if op["via"] != "ecam":
                return {"status": "error", "reason": "no-cf8"}
            b, rest = op["bdf"].split(":")
            d, fn = rest.split(".")
            value = num(op["value"]) if k == "cfg.write" else None
            addr = ECAM + (int(b, 16) << 20) + (((int(d, 16) << 3) | int(fn)) << 12) + num(op["reg"])
            return self.access(root, addr, op["size"], value, False)
        if k in ("mmio.read", "mmio.write"):
            return self.access(root, num(op["addr"]), op["size"], num(op["value"]) if k == "mmio.write" else None, False)
        if k in ("pio.read", "pio.write"):
            return self.access(root, num(op["port"]), op["size"], num(op["value"]) if k == "pio.write" else None, True)
        if k == "dma.map":
            if op["domain"] != 0:
                return {"status": "error", "reason": "no-domain"}
            return self.dma_map(root, num(op["iova"]), num(op["size"]), num(op["gpa"]), op["perm"])
        if k == "dma.unmap":
            if op["domain"] != 0:
                return {"status": "error", "reason": "no-domain"}
            return self.dma_unmap(root, num(op["iova"]), num(op["size"]))
        if k in ("region.read", "region.write"):
            data = bytes.fromhex(op["data"]) if k == "region.write" else None
            return self.region(op["dev"], op["region"], num(op["offset"]), op["count"] if data is None else len(data), data)
        if k in ("dma.attach", "dma.detach"):
            r = next((x for x in self.roots if x.dev.id == op["dev"]), None)
            if r is None:
                return {"status": "error", "reason": "no-device"}
            if k == "dma.detach":
                if r.dev_domain is None:
                    return {"status": "error", "reason": "no-domain"}
                r.dev_domain = None
                return {"status": "ok"}
            if op["domain"] != 0:
                return {"status": "error", "reason": "no-domain"}
            if r.dev_domain is not None and r.dev_domain != op["domain"]:
                return {"status": "error", "reason": "busy"}
            r.dev_domain = op["domain"]
            return {"status": "ok"}
        if k == "dev.reset":
            r = next((x for x in self.roots if x.dev.id == op["dev"]), None)
            if r is None:
                return {"status": "error", "reason": "no-device"}
            r.dev.reset()
            return {"status": "ok"}
        return {"status": "error", "reason": "unsupported"}


class Opts:
    def __init__(self, argv):
        def opt(name, default, allowed=None):
            if name in argv:
                v = argv[argv.index(name) + 1]
                if allowed is not None and v not in allowed:
                    sys.exit(f"acme-vmm: {name} takes one of {', '.join(allowed)}, got {v}")
                return v
            return default
        self.unassigned = opt("--unassigned", "zeros", ["zeros", "ones"])
        self.align = opt("--align", "any", ["any", "page"])
        self.ro_write = opt("--ro-write", "refuse", ["refuse", "ignore"])
        self.not_decoding = opt("--not-decoding", "serve", ["serve", "refuse"])
        self.errno = opt("--errno", "bsd", ["bsd", "linux"])
        self.roots = int(opt("--roots", "2"))
        bugs = [argv[i + 1] for i, a in enumerate(argv) if a == "--bug"]
        self.shared_io = "shared-io" in bugs
        self.stale_bar = "stale-bar" in bugs


def topology(n):
    return {"roots": [{"bus": 0, "busLimit": 0, "ram": RAM, "ecam": ECAM, "iommu": True, "domains": 1,
                       "devices": [{"id": f"acme{i}", "kind": "opaque", "slot": 0, "fn": 0,
                                    "identity": {"vendor": 0x1D1D, "device": 0x0042, "classCode": 0x028000, "revision": 3, "headerType": 0}}]}
                      for i in range(n)]}


def main():
    opts = Opts(sys.argv[1:])
    machine = None
    out = sys.stdout

    def send(m):
        out.write(json.dumps(m) + "\n")
        out.flush()

    for line in sys.stdin:
        msg = json.loads(line)
        t = msg.get("type")
        if t == "hello":
            send({"type": "hello", "protocol": "isoroot-target", "version": 1,
                  "target": {"name": "acme-vmm", "version": "1.0"},
                  "capabilities": {"ops": ["config", "mmio", "pio", "dma-map", "region", "reset"], "maxRoots": opts.roots,
                                   "personalities": ["opaque"], "caps": [], "vias": ["ecam"],
                                   "observes": {"delivery": True, "irqs": False},
                                   "contract": {k: "isolated" for k in ["memory", "io", "dma", "irq", "pasid", "config"]}},
                  "topology": topology(opts.roots)})
        elif t == "open":
            machine = Machine(opts)
            send({"type": "opened"})
        elif t == "op":
            send({"type": "obs", "seq": msg["seq"], "obs": machine.apply(msg["op"])})
        elif t == "close":
            machine = None
            send({"type": "closed"})
        elif t == "bye":
            return


if __name__ == "__main__":
    main()
