#!/usr/bin/env python3
"""A foreign vfio-user server: "blinken", written from the vfio-user
specification (QEMU docs/interop/vfio-user.rst) and PCI 3.0 alone, apart
from isoroot, to try isoroot's vfio-user client on a server it did not
write. One device, unknown to isoroot: a conventional function (1209:5150)
with a 4 KiB memory BAR0, a 16-byte IO BAR2, INTx, and a register file.

    blinken_vfu.py SOCKET [--once] [--keep-state] [--error-body] [--stale]

  --once        serve one client, then exit (the specification allows it)
  --keep-state  keep the device's state from one client to the next
  --error-body  error replies carry the request's payload after the header
                (a departure: "the reply message must only include the reply header")
  --stale       refuses nothing at all for a region access past a BAR's
                end, and serves it from the next bytes (a departure)

It refuses a stale socket path (as some servers do): whoever starts it
removes the old one first.
"""
import json
import os
import socket
import struct
import sys

HDR = struct.Struct("<HHIII")
VERSION, DMA_MAP, DMA_UNMAP, GET_INFO, GET_REGION_INFO, GET_REGION_IO_FDS, GET_IRQ_INFO, SET_IRQS, REGION_READ, REGION_WRITE, DMA_READ, DMA_WRITE, RESET = range(1, 14)
F_REPLY, F_NO_REPLY, F_ERROR = 1, 0x10, 0x20
EINVAL, ENOENT, EEXIST, EIO, E2BIG, ENOTSUP = 22, 2, 17, 5, 7, 95
REGION_SIZES = [0x1000, 0, 0x10, 0, 0, 0, 0, 0x100, 0]
XFER = 1 << 20


class Device:
    """The blinken function: its config space with write masks (PCI 3.0 chapter 6) and its registers."""

    def __init__(self):
        self.cfg = bytearray(256)
        self.wmask = bytearray(256)
        self.w1c = bytearray(256)
        self.put(0x00, 2, 0x1209)
        self.put(0x02, 2, 0x5150)
        self.put(0x08, 1, 0x01)
        self.put(0x09, 3, 0x088000)     # base system peripheral, other
        self.mask(0x04, 2, 0x0403)      # IO and memory decode, interrupt disable
        self.mask(0x06, 2, 0, 0xF900)
        self.mask(0x0C, 1, 0xFF)
        self.mask(0x10, 4, 0xFFFFF000)
        self.put(0x18, 4, 0x1)
        self.mask(0x18, 4, 0xFFFFFFF0)
        self.put(0x2C, 4, 0x00011209)
        self.mask(0x3C, 1, 0xFF)
        self.put(0x3D, 1, 0x01)
        self.bar0 = bytearray(0x1000)
        self.bar0[0:4] = b"BLNK"
        self.bar2 = bytearray(0x10)

    def put(self, off, size, v):
        self.cfg[off:off + size] = v.to_bytes(size, "little")

    def mask(self, off, size, w, c=0):
        self.wmask[off:off + size] = w.to_bytes(size, "little")
        self.w1c[off:off + size] = c.to_bytes(size, "little")

    def cfg_write(self, off, data):
        for i, v in enumerate(data):
            o = off + i
            w, c = self.wmask[o], self.w1c[o]
            self.cfg[o] = ((self.cfg[o] & ~w) | (v & w)) & ~(v & c) & 0xFF


class Server:
    def __init__(self, opts):
        self.opts = opts
        self.dev = Device()
        self.maps = []

    def fail(self, err, payload=b""):
        return err, (payload if self.opts.error_body else b"")

    def region(self, body, write):
        if len(body) < 16:
            return self.fail(EINVAL, body)
        offset, index, count = struct.unpack_from("<QII", body)
        data = body[16:]
        if index >= len(REGION_SIZES) or REGION_SIZES[index] == 0:
            return self.fail(EINVAL, body)
        if count > XFER or (write and len(data) != count):
            return self.fail(EINVAL, body)
        size = REGION_SIZES[index]
        if offset + count > size and not (self.opts.stale and index != 7):
            return self.fail(EINVAL, body)
        d = self.dev
        if index == 7:
            if write:
                d.cfg_write(offset, data)
                return 0, struct.pack("<QII", offset, index, count)
            return 0, struct.pack("<QII", offset, index, count) + bytes(d.cfg[offset:offset + count])
        store = d.bar0 if index == 0 else d.bar2
        if write:
            lo = max(offset, 4)
            for i in range(lo, min(offset + count, len(store))):
                store[i] = data[i - offset]
            return 0, struct.pack("<QII", offset, index, count)
        out = bytes(store[offset:offset + count]).ljust(count, b"\0")
        return 0, struct.pack("<QII", offset, index, count) + out

    def handle(self, cmd, body, fds):
        for fd in fds:
            if cmd != SET_IRQS:
                os.close(fd)
        if cmd == VERSION:
            caps = {"capabilities": {"max_msg_fds": 8, "max_data_xfer_size": XFER}}
            return 0, struct.pack("<HH", 0, min(struct.unpack_from("<HH", body)[1], 0)) + json.dumps(caps).encode() + b"\0"
        if cmd == GET_INFO:
            return 0, struct.pack("<IIII", 16, 0x3, len(REGION_SIZES), 5)
        if cmd == GET_REGION_INFO:
            argsz, _, index = struct.unpack_from("<III", body)
            if index >= len(REGION_SIZES):
                return self.fail(EINVAL, body)
            size = REGION_SIZES[index]
            return 0, struct.pack("<IIIIQQ", 32, 0x3 if size else 0, index, 0, size, 0)
        if cmd == GET_IRQ_INFO:
            _, _, index, _ = struct.unpack_from("<IIII", body)
            if index >= 5:
                return self.fail(EINVAL, body)
            return 0, struct.pack("<IIII", 16, 0, index, 1 if index in (0, 3, 4) else 0)
        if cmd == SET_IRQS:
            for fd in fds:
                os.close(fd)
            return 0, b""
        if cmd == REGION_READ:
            return self.region(body, False)
        if cmd == REGION_WRITE:
            return self.region(body, True)
        if cmd == DMA_MAP:
            _, _, _, addr, size = struct.unpack_from("<IIQQQ", body)
            if any(addr < a + s and a < addr + size for a, s in self.maps):
                return self.fail(EEXIST, body)
            self.maps.append((addr, size))
            return 0, b""
        if cmd == DMA_UNMAP:
            argsz, flags, addr, size = struct.unpack_from("<IIQQ", body)
            if (addr, size) not in self.maps:
                return self.fail(ENOENT, body)
            self.maps.remove((addr, size))
            return 0, body[:24]
        if cmd == RESET:
            self.dev = Device()
            return 0, b""
        return self.fail(ENOTSUP, body)


def recv_exact(conn, n, fds):
    buf = b""
    while len(buf) < n:
        data, anc, _, _ = conn.recvmsg(n - len(buf), socket.CMSG_LEN(16 * 4))
        if not data:
            return None
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.extend(struct.unpack(f"{len(payload) // 4}i", payload[: len(payload) // 4 * 4]))
        buf += data
    return buf


def serve(conn, server):
    while True:
        fds = []
        head = recv_exact(conn, HDR.size, fds)
        if head is None:
            return
        mid, cmd, size, flags, _ = HDR.unpack(head)
        body = recv_exact(conn, size - HDR.size, fds) if size > HDR.size else b""
        if body is None:
            return
        err, payload = server.handle(cmd, body, fds)
        if flags & F_NO_REPLY:
            continue
        out_flags = F_REPLY | (F_ERROR if err else 0)
        conn.sendall(HDR.pack(mid, cmd, HDR.size + len(payload), out_flags, err) + payload)


class Opts:
    def __init__(self, argv):
        self.once = "--once" in argv
        self.keep = "--keep-state" in argv
        self.error_body = "--error-body" in argv
        self.stale = "--stale" in argv


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 1:
        sys.exit("usage: blinken_vfu.py SOCKET [--once] [--keep-state] [--error-body] [--stale]")
    path = args[0]
    opts = Opts(sys.argv[1:])
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)  # a stale path is an error, as with libvfio-user: the caller removes it
    listener.listen(0)
    server = Server(opts)
    try:
        while True:
            conn, _ = listener.accept()
            with conn:
                try:
                    serve(conn, server)
                except (ConnectionResetError, BrokenPipeError):
                    pass
            if opts.once:
                return
            if not opts.keep:
                server = Server(opts)
    finally:
        listener.close()
        os.unlink(path)


if __name__ == "__main__":
    main()
