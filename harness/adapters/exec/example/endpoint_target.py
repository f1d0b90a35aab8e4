#!/usr/bin/env python3
"""An example isoroot target in Python: generic endpoints on isolated roots.

It implements, independently of isoroot's TypeScript model, the part of
the reference semantics it declares in its capabilities: a bus (memory and
port accesses; isoroot lowers config operations onto it), decoding
configuration space through ECAM and CF8/CFC, BAR sizing and decode, the generic
endpoint's register file, RAM, and the isolation contract "every space of
every root is its own". It speaks the target protocol of
docs/target-protocol.md: JSON Lines on stdin and stdout.

Switches, for showing that isoroot catches what goes wrong:
  --bug stale-bar      a BAR's old placement keeps decoding after it moves
  --crash-after N      exit abruptly when op N of a session arrives
  --hang-after N       stop answering when op N of a session arrives
"""
import json
import sys

ECAM_DEFAULT = 0xB0000000
RAM_DEFAULT = 0x08000000
ADDR_LIMIT = 1 << 52


def hexv(n):
    return hex(n)


def num(v):
    return int(v, 16) if isinstance(v, str) else int(v)


class Endpoint:
    """The generic endpoint of isoroot's model (docs/model.md), without capabilities."""

    def __init__(self, spec, root, uid, multifunction):
        self.id = spec["id"]
        self.root = root
        self.uid = uid
        self.slot = spec["slot"]
        self.fn = spec.get("fn", 0)
        self.cfg = bytearray(256)
        self.wmask = bytearray(256)
        self.w1c = bytearray(256)
        self.set(0x00, 2, 0x1B36)
        self.set(0x02, 2, 0x1100)
        self.set(0x08, 1, 1)
        self.set(0x09, 3, 0xFF0000)
        self.set(0x0E, 1, 0x80 if multifunction else 0)
        self.set(0x3D, 1, 1)
        self.mask(0x04, 2, 0x0547)
        self.mask(0x06, 2, 0, 0xF900)
        self.mask(0x0C, 1, 0xFF)
        self.mask(0x0D, 1, 0xFF)
        self.mask(0x3C, 1, 0xFF)
        self.bars = {}
        slot = 0
        for b in spec.get("bars", []):
            kind, size = b["kind"], num(b["size"])
            reg = 0x10 + 4 * slot
            self.bars[slot] = (kind, size, reg)
            if kind == "io":
                self.set(reg, 4, 1)
                self.mask(reg, 4, ~(size - 1) & 0xFFFFFFFC)
            elif kind == "mem32":
                self.set(reg, 4, 0x8 if b.get("prefetch") else 0)
                self.mask(reg, 4, ~(size - 1) & 0xFFFFFFF0)
            else:
                self.set(reg, 4, 0x4 | (0x8 if b.get("prefetch") else 0))
                self.mask(reg, 4, 0 if size >= 1 << 32 else ~(size - 1) & 0xFFFFFFF0)
                self.mask(reg + 4, 4, 0xFFFFFFFF if size <= 1 << 32 else ~((size >> 32) - 1) & 0xFFFFFFFF)
            slot += 2 if kind == "mem64" else 1
        if "rom" in spec:
            size = num(spec["rom"])
            self.bars[6] = ("rom", size, 0x30)
            self.mask(0x30, 4, (~(size - 1) & 0xFFFFF800) | 1)
        self.files = {}
        self.intx = False
        self.placements = {}
        self.ghosts = []

    def set(self, off, size, value):
        for i in range(size):
            self.cfg[off + i] = (value >> (8 * i)) & 0xFF

    def mask(self, off, size, writable, w1c=0):
        for i in range(size):
            self.wmask[off + i] = (writable >> (8 * i)) & 0xFF
            self.w1c[off + i] = (w1c >> (8 * i)) & 0xFF

    def get(self, off, size):
        return int.from_bytes(self.cfg[off:off + size], "little")

    def config_read(self, off, size):
        if off >= 256:
            return (1 << (8 * size)) - 1
        return self.get(off, size)

    def config_write(self, off, size, value):
        if off >= 256:
            return
        for i in range(size):
            v = (value >> (8 * i)) & 0xFF
            o = off + i
            w, c = self.wmask[o], self.w1c[o]
            self.cfg[o] = ((self.cfg[o] & ~w) | (v & w)) & ~(v & c) & 0xFF
        self.update_intx_status()

    def bar_address(self, region):
        kind, size, reg = self.bars[region]
        cmd = self.get(0x04, 2)
        lo = self.get(reg, 4)
        if kind == "io":
            if not cmd & 1:
                return None
            base = lo & 0xFFFFFFFC
        else:
            if not cmd & 2:
                return None
            if kind == "rom":
                if not lo & 1:
                    return None
                base = lo & 0xFFFFF800
            elif kind == "mem64":
                base = (self.get(reg + 4, 4) << 32) | (lo & 0xFFFFFFF0)
            else:
                base = lo & 0xFFFFFFF0
        return None if base + size > ADDR_LIMIT else base

    def file(self, region):
        if region not in self.files:
            size = min(self.bars[region][1], 0x1000)
            f = bytearray(size)
            ident = 0x15000000 | (self.uid << 8) | region
            for i in range(min(4, size)):
                f[i] = (ident >> (8 * i)) & 0xFF
            self.files[region] = f
        return self.files[region]

    def region_read(self, region, off, size):
        if region == 6:
            b = bytes(0x55 if o == 0 else 0xAA if o == 1 else (self.uid * 7 + o) & 0xFF for o in range(off, off + size))
            return int.from_bytes(b, "little")
        f = self.file(region)
        if off + size > len(f):
            return 0
        if len(f) > 8:
            f[8] = 1 if self.intx else 0
        return int.from_bytes(f[off:off + size], "little")

    def region_write(self, region, off, size, value):
        if region == 6:
            return
        f = self.file(region)
        if off + size > len(f):
            return
        doorbell = ack = False
        for i in range(size):
            o = off + i
            if o < 4 or 0x0C <= o < 0x10:
                continue
            if 8 <= o < 0x0C:
                ack = True
                continue
            f[o] = (value >> (8 * i)) & 0xFF
            if 4 <= o < 8:
                doorbell = True
        if ack:
            self.intx = False
            self.update_intx_status()
        if doorbell:
            # No MSI or MSI-X: a doorbell asserts INTx (PCI 3.0 6.8).
            self.intx = True
            self.update_intx_status()

    def update_intx_status(self):
        st = self.get(0x06, 2)
        self.set(0x06, 2, (st | 0x08) if self.intx else (st & ~0x08))


class Root:
    def __init__(self, index, spec, uid_start, stale_bar):
        self.index = index
        self.bus = num(spec["bus"])
        self.bus_limit = num(spec["busLimit"])
        self.ram_size = num(spec.get("ram", RAM_DEFAULT))
        ecam = spec.get("ecam", ECAM_DEFAULT)
        self.ecam = None if ecam is None else num(ecam)
        self.cf8 = bool(spec.get("cf8", False))
        self.cf8_latch = 0
        self.ram = {}
        self.stale_bar = stale_bar
        self.fns = {}
        counts = {}
        for d in spec["devices"]:
            counts[d["slot"]] = counts.get(d["slot"], 0) + 1
        uid = uid_start
        for d in spec["devices"]:
            uid += 1
            if d.get("present", True) is False:
                continue
            if d["kind"] != "endpoint" or d.get("children") or d.get("emulator"):
                raise ValueError(f"device {d['id']}: only generic endpoints on a root bus are supported")
            f = Endpoint(d, index, uid, counts[d["slot"]] > 1)
            self.fns[(d["slot"] << 3) | d.get("fn", 0)] = f
        self.uid_end = uid
        self.seq = 0

    # Decode state: each BAR's placement, renumbered when it moves (a later mapping wins).
    def refresh(self, f):
        for region in f.bars:
            base = f.bar_address(region)
            old = f.placements.get(region)
            if old is not None and base is not None and old[0] == base:
                continue
            if old is None and base is None:
                continue
            if old is not None and self.stale_bar:
                f.ghosts.append((region, old[0], old[1]))
            if base is None:
                f.placements.pop(region, None)
            else:
                self.seq += 1
                f.placements[region] = (base, self.seq)

    def decode(self, addr, io):
        best = None
        for f in self.fns.values():
            cands = [(r, b, s) for r, (b, s) in f.placements.items()] + list(f.ghosts)
            for region, base, seq in cands:
                kind, size, _ = f.bars[region]
                if (kind == "io") != io:
                    continue
                if base <= addr < base + size and (best is None or seq > best[0]):
                    best = (seq, f, region, base)
        return best


class Machine:
    def __init__(self, topology, stale_bar):
        self.roots = []
        uid = 0
        for i, r in enumerate(topology["roots"]):
            if r.get("share"):
                raise ValueError("only isolated roots are supported")
            root = Root(i, r, uid, stale_bar)
            uid = root.uid_end
            self.roots.append(root)

    def config(self, root, bus, devfn, reg, size, value):
        miss = {"status": "ur", "to": {"root": root.index}}
        if value is None:
            miss["value"] = hexv((1 << (8 * size)) - 1)
        if not root.bus <= bus <= root.bus_limit or bus != root.bus:
            return miss
        f = root.fns.get(devfn)
        if f is None:
            return miss
        to = {"root": root.index, "dev": f.id, "region": "cfg", "offset": hexv(reg)}
        if value is None:
            return {"status": "ok", "value": hexv(f.config_read(reg, size)), "to": to}
        f.config_write(reg, size, value)
        root.refresh(f)
        return {"status": "ok", "to": to}

    def mem(self, r, addr, size, value):
        root = self.roots[r]
        if addr + size <= root.ram_size:
            to = {"root": r, "region": "ram", "offset": hexv(addr)}
            if value is None:
                b = bytes(root.ram.get(addr + i, 0) for i in range(size))
                return {"status": "ok", "value": hexv(int.from_bytes(b, "little")), "to": to}
            for i in range(size):
                root.ram[addr + i] = (value >> (8 * i)) & 0xFF
            return {"status": "ok", "to": to}
        if root.ecam is not None and root.ecam <= addr < root.ecam + (256 << 20):
            off = addr - root.ecam
            bus, devfn, reg = (off >> 20) & 0xFF, (off >> 12) & 0xFF, off & 0xFFF
            if size == 8:
                lo = self.config(root, bus, devfn, reg, 4, None if value is None else value & 0xFFFFFFFF)
                hi = self.config(root, bus, devfn, reg + 4, 4, None if value is None else value >> 32)
                if value is None:
                    lo["value"] = hexv(int(lo["value"], 16) | (int(hi["value"], 16) << 32))
                return lo
            return self.config(root, bus, devfn, reg, size, value)
        return self.deliver(root, root.decode(addr, False), addr, size, value)

    def pio(self, r, port, size, value):
        root = self.roots[r]
        if root.cf8:
            if port == 0xCF8 and size == 4:
                to = {"root": r, "region": "cf8"}
                if value is None:
                    return {"status": "ok", "value": hexv(root.cf8_latch), "to": to}
                root.cf8_latch = value & 0x80FFFFFC
                return {"status": "ok", "to": to}
            latch = root.cf8_latch
            if 0xCFC <= port and port + size <= 0xD00 and latch & 0x80000000:
                return self.config(root, (latch >> 16) & 0xFF, (latch >> 8) & 0xFF, (latch & 0xFC) + port - 0xCFC, size, value)
        return self.deliver(root, root.decode(port, True), port, size, value)

    def deliver(self, root, hit, addr, size, value):
        if hit is None:
            o = {"status": "ma", "to": {"root": root.index}}
            if value is None:
                o["value"] = hexv((1 << (8 * size)) - 1)
            return o
        _, f, region, base = hit
        off = addr - base
        to = {"root": root.index, "dev": f.id, "region": "rom" if region == 6 else f"bar{region}", "offset": hexv(off)}
        if value is None:
            return {"status": "ok", "value": hexv(f.region_read(region, off, size)), "to": to}
        f.region_write(region, off, size, value)
        return {"status": "ok", "to": to}

    def apply(self, op):
        k = op["op"]
        if k in ("mmio.read", "mmio.write"):
            return self.mem(op["root"], num(op["addr"]), op["size"], num(op["value"]) if k == "mmio.write" else None)
        if k in ("pio.read", "pio.write"):
            return self.pio(op["root"], num(op["port"]), op["size"], num(op["value"]) if k == "pio.write" else None)
        return {"status": "error", "reason": "unsupported"}


# A target with a bus: isoroot lowers config operations to its ECAM window
# and CF8/CFC ports (configOverBus), which this target decodes itself.
CAPABILITIES = {
    "ops": ["mmio", "pio"],
    "configOverBus": True,
    "maxRoots": 8,
    "personalities": ["endpoint"],
    "caps": [],
    "vias": ["ecam", "cf8"],
    "observes": {"delivery": True, "irqs": False},
    "contract": {k: "isolated" for k in ["memory", "io", "dma", "irq", "pasid", "config"]},
}


def main():
    args = sys.argv[1:]
    stale_bar = "--bug" in args and args[args.index("--bug") + 1] == "stale-bar"
    crash_after = int(args[args.index("--crash-after") + 1]) if "--crash-after" in args else None
    hang_after = int(args[args.index("--hang-after") + 1]) if "--hang-after" in args else None
    out = sys.stdout
    machine = None

    def send(msg):
        out.write(json.dumps(msg) + "\n")
        out.flush()

    for line in sys.stdin:
        msg = json.loads(line)
        t = msg.get("type")
        if t == "hello":
            send({"type": "hello", "protocol": "isoroot-target", "version": 1,
                  "target": {"name": "python-endpoint", "version": "1.0"}, "capabilities": CAPABILITIES})
        elif t == "open":
            try:
                machine = Machine(msg["topology"], stale_bar)
                send({"type": "opened"})
            except ValueError as e:
                send({"type": "error", "message": str(e)})
        elif t == "op":
            if crash_after is not None and msg["seq"] >= crash_after:
                sys.stderr.write(f"python-endpoint: crashing on purpose at op {msg['seq']}\n")
                sys.stderr.flush()
                sys.exit(3)
            if hang_after is not None and msg["seq"] >= hang_after:
                import time
                time.sleep(3600)
            send({"type": "obs", "seq": msg["seq"], "obs": machine.apply(msg["op"])})
        elif t == "close":
            machine = None
            send({"type": "closed"})
        elif t == "bye":
            return


if __name__ == "__main__":
    main()
