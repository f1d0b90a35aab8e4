-- Wireshark dissector for isoroot's vfio-user captures (docs/wireshark.md).
--
-- A capture is a classic pcap file with link type LINKTYPE_USER0 (147).
-- Each packet is an 8-byte pseudo-header (little-endian) and then either
-- one whole vfio-user message or a session label:
--
--   byte 0     encapsulation version, 1
--   byte 1     direction: 0 client to server, 1 server to client
--   byte 2     record kind: 0 vfio-user message, 1 session label (UTF-8)
--   byte 3     number of file descriptors sent with the message (SCM_RIGHTS)
--   bytes 4-7  session index (u32), one per connection, from 0
--
-- The messages follow QEMU's docs/interop/vfio-user.rst; all fields are
-- little-endian (the host's order, and isoroot runs on little-endian hosts).
--
-- Load it with
--   wireshark -X lua_script:tools/wireshark/vfio-user.lua capture.pcap
--   tshark -X lua_script:tools/wireshark/vfio-user.lua -r capture.pcap -V
-- or copy it into ~/.local/lib/wireshark/plugins/.

local vfio_user = Proto("vfio_user", "vfio-user Protocol")

----------------------------------------------------------------------
-- Value names
----------------------------------------------------------------------

local COMMANDS = {
    [1] = "VERSION",
    [2] = "DMA_MAP",
    [3] = "DMA_UNMAP",
    [4] = "DEVICE_GET_INFO",
    [5] = "DEVICE_GET_REGION_INFO",
    [6] = "DEVICE_GET_REGION_IO_FDS",
    [7] = "DEVICE_GET_IRQ_INFO",
    [8] = "DEVICE_SET_IRQS",
    [9] = "REGION_READ",
    [10] = "REGION_WRITE",
    [11] = "DMA_READ",
    [12] = "DMA_WRITE",
    [13] = "DEVICE_RESET",
    [14] = "DIRTY_PAGES",          -- withdrawn from the specification
    [15] = "REGION_WRITE_MULTI",
    [16] = "DEVICE_FEATURE",
    [17] = "MIG_DATA_READ",
    [18] = "MIG_DATA_WRITE",
}
local CMD = {}
for n, name in pairs(COMMANDS) do CMD[name] = n end

local DIRECTIONS = { [0] = "client to server", [1] = "server to client" }
local RECORD_KINDS = { [0] = "vfio-user message", [1] = "session label" }
local MSG_TYPES = { [0] = "command", [1] = "reply" }

-- Linux errno values (asm-generic/errno-base.h, errno.h).
local ERRNO = {
    [0] = "none", [1] = "EPERM", [2] = "ENOENT", [3] = "ESRCH", [4] = "EINTR", [5] = "EIO",
    [6] = "ENXIO", [7] = "E2BIG", [8] = "ENOEXEC", [9] = "EBADF", [10] = "ECHILD",
    [11] = "EAGAIN", [12] = "ENOMEM", [13] = "EACCES", [14] = "EFAULT", [15] = "ENOTBLK",
    [16] = "EBUSY", [17] = "EEXIST", [18] = "EXDEV", [19] = "ENODEV", [20] = "ENOTDIR",
    [21] = "EISDIR", [22] = "EINVAL", [23] = "ENFILE", [24] = "EMFILE", [25] = "ENOTTY",
    [26] = "ETXTBSY", [27] = "EFBIG", [28] = "ENOSPC", [29] = "ESPIPE", [30] = "EROFS",
    [31] = "EMLINK", [32] = "EPIPE", [33] = "EDOM", [34] = "ERANGE", [35] = "EDEADLK",
    [36] = "ENAMETOOLONG", [37] = "ENOLCK", [38] = "ENOSYS", [39] = "ENOTEMPTY",
    [40] = "ELOOP", [42] = "ENOMSG", [43] = "EIDRM", [61] = "ENODATA", [62] = "ETIME",
    [71] = "EPROTO", [74] = "EBADMSG", [75] = "EOVERFLOW", [84] = "EILSEQ",
    [88] = "ENOTSOCK", [90] = "EMSGSIZE", [95] = "EOPNOTSUPP", [98] = "EADDRINUSE",
    [103] = "ECONNABORTED", [104] = "ECONNRESET", [105] = "ENOBUFS", [107] = "ENOTCONN",
    [110] = "ETIMEDOUT", [111] = "ECONNREFUSED", [114] = "EALREADY", [115] = "EINPROGRESS",
    [121] = "EREMOTEIO", [122] = "EDQUOT", [125] = "ECANCELED",
}

-- VFIO_PCI_*_REGION_INDEX and VFIO_PCI_*_IRQ_INDEX.
local REGIONS = {
    [0] = "BAR0", [1] = "BAR1", [2] = "BAR2", [3] = "BAR3", [4] = "BAR4", [5] = "BAR5",
    [6] = "ROM", [7] = "CONFIG", [8] = "VGA",
}
local IRQS = { [0] = "INTX", [1] = "MSI", [2] = "MSIX", [3] = "ERR", [4] = "REQ" }
local REGION_CAPS = { [1] = "SPARSE_MMAP", [2] = "TYPE" }
local IO_FD_TYPES = { [0] = "ioeventfd", [1] = "ioregionfd" }
local FEATURES = {
    [1] = "MIGRATION", [2] = "MIG_DEVICE_STATE", [6] = "DMA_LOGGING_START",
    [7] = "DMA_LOGGING_STOP", [8] = "DMA_LOGGING_REPORT",
}
local MIG_STATES = {
    [0] = "ERROR", [1] = "STOP", [2] = "RUNNING", [3] = "STOP_COPY", [4] = "RESUMING",
    [5] = "RUNNING_P2P", [6] = "PRE_COPY", [7] = "PRE_COPY_P2P",
}

----------------------------------------------------------------------
-- Fields
----------------------------------------------------------------------

local f = {
    -- capture pseudo-header
    encap_version = ProtoField.uint8("vfio_user.encap_version", "Encapsulation version", base.DEC),
    direction = ProtoField.uint8("vfio_user.direction", "Direction", base.DEC, DIRECTIONS),
    record_kind = ProtoField.uint8("vfio_user.record_kind", "Record kind", base.DEC, RECORD_KINDS),
    fds = ProtoField.uint8("vfio_user.fds", "File descriptors (SCM_RIGHTS)", base.DEC),
    session = ProtoField.uint32("vfio_user.session", "Session", base.DEC),
    label = ProtoField.string("vfio_user.label", "Session label"),

    -- header
    msg_id = ProtoField.uint16("vfio_user.msg_id", "Message ID", base.DEC),
    cmd = ProtoField.uint16("vfio_user.cmd", "Command", base.DEC, COMMANDS),
    cmd_name = ProtoField.string("vfio_user.cmd_name", "Command name"),
    size = ProtoField.uint32("vfio_user.size", "Message size", base.DEC),
    flags = ProtoField.uint32("vfio_user.flags", "Flags", base.HEX),
    flags_type = ProtoField.uint32("vfio_user.flags.type", "Type", base.DEC, MSG_TYPES, 0x0000000f),
    flags_no_reply = ProtoField.bool("vfio_user.flags.no_reply", "No reply", 32, nil, 0x00000010),
    flags_error = ProtoField.bool("vfio_user.flags.error", "Error", 32, nil, 0x00000020),
    error = ProtoField.uint32("vfio_user.error", "Error (errno)", base.DEC, ERRNO),
    errno_name = ProtoField.string("vfio_user.errno_name", "Error name"),

    argsz = ProtoField.uint32("vfio_user.argsz", "argsz", base.DEC),

    -- VERSION
    version_major = ProtoField.uint16("vfio_user.version.major", "Major version", base.DEC),
    version_minor = ProtoField.uint16("vfio_user.version.minor", "Minor version", base.DEC),
    version_json = ProtoField.string("vfio_user.version.json", "Capabilities (JSON)"),

    -- DMA_MAP, DMA_UNMAP, DMA_READ, DMA_WRITE
    dma_flags = ProtoField.uint32("vfio_user.dma.flags", "Flags", base.HEX),
    dma_flag_read = ProtoField.bool("vfio_user.dma.flags.read", "Readable", 32, nil, 0x1),
    dma_flag_write = ProtoField.bool("vfio_user.dma.flags.write", "Writeable", 32, nil, 0x2),
    dma_flag_unmap_all = ProtoField.bool("vfio_user.dma.flags.unmap_all", "Unmap all", 32, nil, 0x2),
    dma_offset = ProtoField.uint64("vfio_user.dma.offset", "File offset", base.HEX),
    dma_address = ProtoField.uint64("vfio_user.dma.address", "Address", base.HEX),
    dma_size = ProtoField.uint64("vfio_user.dma.size", "Size", base.HEX),
    dma_count = ProtoField.uint64("vfio_user.dma.count", "Count", base.DEC),
    dma_data = ProtoField.bytes("vfio_user.dma.data", "Data"),

    -- DEVICE_GET_INFO
    device_flags = ProtoField.uint32("vfio_user.device.flags", "Flags", base.HEX),
    device_flag_reset = ProtoField.bool("vfio_user.device.flags.reset", "VFIO_DEVICE_FLAGS_RESET", 32, nil, 0x1),
    device_flag_pci = ProtoField.bool("vfio_user.device.flags.pci", "VFIO_DEVICE_FLAGS_PCI", 32, nil, 0x2),
    device_num_regions = ProtoField.uint32("vfio_user.device.num_regions", "Regions", base.DEC),
    device_num_irqs = ProtoField.uint32("vfio_user.device.num_irqs", "IRQ types", base.DEC),

    -- DEVICE_GET_REGION_INFO
    ri_flags = ProtoField.uint32("vfio_user.region_info.flags", "Flags", base.HEX),
    ri_flag_read = ProtoField.bool("vfio_user.region_info.flags.read", "VFIO_REGION_INFO_FLAG_READ", 32, nil, 0x1),
    ri_flag_write = ProtoField.bool("vfio_user.region_info.flags.write", "VFIO_REGION_INFO_FLAG_WRITE", 32, nil, 0x2),
    ri_flag_mmap = ProtoField.bool("vfio_user.region_info.flags.mmap", "VFIO_REGION_INFO_FLAG_MMAP", 32, nil, 0x4),
    ri_flag_caps = ProtoField.bool("vfio_user.region_info.flags.caps", "VFIO_REGION_INFO_FLAG_CAPS", 32, nil, 0x8),
    ri_index = ProtoField.uint32("vfio_user.region_info.index", "Index", base.DEC, REGIONS),
    ri_cap_offset = ProtoField.uint32("vfio_user.region_info.cap_offset", "Capability offset", base.HEX),
    ri_size = ProtoField.uint64("vfio_user.region_info.size", "Size", base.HEX),
    ri_offset = ProtoField.uint64("vfio_user.region_info.offset", "Offset", base.HEX),
    cap_id = ProtoField.uint16("vfio_user.region_info.cap.id", "Capability ID", base.DEC, REGION_CAPS),
    cap_version = ProtoField.uint16("vfio_user.region_info.cap.version", "Capability version", base.DEC),
    cap_next = ProtoField.uint32("vfio_user.region_info.cap.next", "Next capability", base.HEX),
    cap_type = ProtoField.uint32("vfio_user.region_info.cap.type", "Region type", base.HEX),
    cap_subtype = ProtoField.uint32("vfio_user.region_info.cap.subtype", "Region subtype", base.HEX),
    cap_data = ProtoField.bytes("vfio_user.region_info.cap.data", "Capability data"),
    sparse_nr_areas = ProtoField.uint32("vfio_user.region_info.sparse.nr_areas", "Areas", base.DEC),
    sparse_reserved = ProtoField.uint32("vfio_user.region_info.sparse.reserved", "Reserved", base.HEX),
    sparse_offset = ProtoField.uint64("vfio_user.region_info.sparse.offset", "Area offset", base.HEX),
    sparse_size = ProtoField.uint64("vfio_user.region_info.sparse.size", "Area size", base.HEX),

    -- DEVICE_GET_REGION_IO_FDS
    io_flags = ProtoField.uint32("vfio_user.io_fds.flags", "Flags", base.HEX),
    io_index = ProtoField.uint32("vfio_user.io_fds.index", "Region", base.DEC, REGIONS),
    io_count = ProtoField.uint32("vfio_user.io_fds.count", "Sub-regions", base.DEC),
    io_sub_offset = ProtoField.uint64("vfio_user.io_fds.sub.offset", "Offset", base.HEX),
    io_sub_size = ProtoField.uint64("vfio_user.io_fds.sub.size", "Size", base.HEX),
    io_sub_fd_index = ProtoField.uint32("vfio_user.io_fds.sub.fd_index", "fd index", base.DEC),
    io_sub_type = ProtoField.uint32("vfio_user.io_fds.sub.type", "Type", base.DEC, IO_FD_TYPES),
    io_sub_flags = ProtoField.uint32("vfio_user.io_fds.sub.flags", "Flags", base.HEX),
    io_sub_padding = ProtoField.uint32("vfio_user.io_fds.sub.padding", "Padding", base.HEX),
    io_sub_datamatch = ProtoField.uint64("vfio_user.io_fds.sub.datamatch", "Datamatch", base.HEX),
    io_sub_user_data = ProtoField.uint64("vfio_user.io_fds.sub.user_data", "User data", base.HEX),

    -- DEVICE_GET_IRQ_INFO, DEVICE_SET_IRQS
    irq_info_flags = ProtoField.uint32("vfio_user.irq_info.flags", "Flags", base.HEX),
    irq_info_eventfd = ProtoField.bool("vfio_user.irq_info.flags.eventfd", "VFIO_IRQ_INFO_EVENTFD", 32, nil, 0x1),
    irq_info_maskable = ProtoField.bool("vfio_user.irq_info.flags.maskable", "VFIO_IRQ_INFO_MASKABLE", 32, nil, 0x2),
    irq_info_automasked = ProtoField.bool("vfio_user.irq_info.flags.automasked", "VFIO_IRQ_INFO_AUTOMASKED", 32, nil, 0x4),
    irq_info_noresize = ProtoField.bool("vfio_user.irq_info.flags.noresize", "VFIO_IRQ_INFO_NORESIZE", 32, nil, 0x8),
    irq_index = ProtoField.uint32("vfio_user.irq.index", "IRQ index", base.DEC, IRQS),
    irq_start = ProtoField.uint32("vfio_user.irq.start", "Start", base.DEC),
    irq_count = ProtoField.uint32("vfio_user.irq.count", "Count", base.DEC),
    irq_set_flags = ProtoField.uint32("vfio_user.irq_set.flags", "Flags", base.HEX),
    irq_set_data_none = ProtoField.bool("vfio_user.irq_set.flags.data_none", "VFIO_IRQ_SET_DATA_NONE", 32, nil, 0x1),
    irq_set_data_bool = ProtoField.bool("vfio_user.irq_set.flags.data_bool", "VFIO_IRQ_SET_DATA_BOOL", 32, nil, 0x2),
    irq_set_data_eventfd = ProtoField.bool("vfio_user.irq_set.flags.data_eventfd", "VFIO_IRQ_SET_DATA_EVENTFD", 32, nil, 0x4),
    irq_set_action_mask = ProtoField.bool("vfio_user.irq_set.flags.action_mask", "VFIO_IRQ_SET_ACTION_MASK", 32, nil, 0x8),
    irq_set_action_unmask = ProtoField.bool("vfio_user.irq_set.flags.action_unmask", "VFIO_IRQ_SET_ACTION_UNMASK", 32, nil, 0x10),
    irq_set_action_trigger = ProtoField.bool("vfio_user.irq_set.flags.action_trigger", "VFIO_IRQ_SET_ACTION_TRIGGER", 32, nil, 0x20),
    irq_set_data = ProtoField.bytes("vfio_user.irq_set.data", "Data (booleans)"),

    -- REGION_READ, REGION_WRITE, REGION_WRITE_MULTI
    region_offset = ProtoField.uint64("vfio_user.region.offset", "Offset", base.HEX),
    region_index = ProtoField.uint32("vfio_user.region.index", "Region", base.DEC, REGIONS),
    region_count = ProtoField.uint32("vfio_user.region.count", "Count", base.DEC),
    region_data = ProtoField.bytes("vfio_user.region.data", "Data"),
    wr_cnt = ProtoField.uint64("vfio_user.write_multi.wr_cnt", "Writes", base.DEC),

    -- DEVICE_FEATURE
    feature_flags = ProtoField.uint32("vfio_user.feature.flags", "Flags", base.HEX),
    feature_index = ProtoField.uint32("vfio_user.feature.index", "Feature", base.DEC, FEATURES, 0x0000ffff),
    feature_get = ProtoField.bool("vfio_user.feature.flags.get", "VFIO_DEVICE_FEATURE_GET", 32, nil, 0x10000),
    feature_set = ProtoField.bool("vfio_user.feature.flags.set", "VFIO_DEVICE_FEATURE_SET", 32, nil, 0x20000),
    feature_probe = ProtoField.bool("vfio_user.feature.flags.probe", "VFIO_DEVICE_FEATURE_PROBE", 32, nil, 0x40000),
    feature_data = ProtoField.bytes("vfio_user.feature.data", "Data"),
    feature_mig_flags = ProtoField.uint64("vfio_user.feature.migration_flags", "Migration flags", base.HEX),
    feature_device_state = ProtoField.uint32("vfio_user.feature.device_state", "Device state", base.DEC, MIG_STATES),
    feature_data_fd = ProtoField.uint32("vfio_user.feature.data_fd", "data_fd (unused)", base.DEC),
    feature_page_size = ProtoField.uint64("vfio_user.feature.page_size", "Page size", base.HEX),
    feature_num_ranges = ProtoField.uint32("vfio_user.feature.num_ranges", "Ranges", base.DEC),
    feature_reserved = ProtoField.uint32("vfio_user.feature.reserved", "Reserved", base.HEX),
    feature_iova = ProtoField.uint64("vfio_user.feature.iova", "IOVA", base.HEX),
    feature_length = ProtoField.uint64("vfio_user.feature.length", "Length", base.HEX),
    feature_bitmap = ProtoField.bytes("vfio_user.feature.bitmap", "Dirty bitmap"),

    -- MIG_DATA_READ, MIG_DATA_WRITE
    mig_size = ProtoField.uint32("vfio_user.mig.size", "Size", base.DEC),
    mig_data = ProtoField.bytes("vfio_user.mig.data", "Data"),

    body = ProtoField.bytes("vfio_user.body", "Body"),
    trailing = ProtoField.bytes("vfio_user.trailing", "Trailing bytes"),
}

local fields = {}
for _, v in pairs(f) do fields[#fields + 1] = v end
vfio_user.fields = fields

local e = {
    bad_pseudo = ProtoExpert.new("vfio_user.expert.bad_pseudo_header", "Bad capture pseudo-header",
        expert.group.MALFORMED, expert.severity.ERROR),
    short = ProtoExpert.new("vfio_user.expert.short", "Message too short",
        expert.group.MALFORMED, expert.severity.ERROR),
    size_mismatch = ProtoExpert.new("vfio_user.expert.size_mismatch", "Message size disagrees with the packet length",
        expert.group.MALFORMED, expert.severity.ERROR),
    trailing = ProtoExpert.new("vfio_user.expert.trailing", "Bytes after the body",
        expert.group.PROTOCOL, expert.severity.WARN),
    count_mismatch = ProtoExpert.new("vfio_user.expert.count_mismatch", "Count disagrees with the data",
        expert.group.PROTOCOL, expert.severity.WARN),
    bad_cap = ProtoExpert.new("vfio_user.expert.bad_cap", "Bad region capability chain",
        expert.group.MALFORMED, expert.severity.WARN),
    error_reply = ProtoExpert.new("vfio_user.expert.error_reply", "Error reply",
        expert.group.RESPONSE_CODE, expert.severity.NOTE),
    unknown_cmd = ProtoExpert.new("vfio_user.expert.unknown_command", "Unknown command",
        expert.group.UNDECODED, expert.severity.WARN),
}
vfio_user.experts = { e.bad_pseudo, e.short, e.size_mismatch, e.trailing, e.count_mismatch, e.bad_cap, e.error_reply, e.unknown_cmd }

local json_dissector = Dissector.get("json")

----------------------------------------------------------------------
-- Helpers
----------------------------------------------------------------------

-- Lua 5.2 (Wireshark up to 4.2) has bit32; Lua 5.3+ has the & operator.
local band = (bit32 and bit32.band) or (bit and bit.band) or load("return function(a, b) return a & b end")()

local function hex(n)
    return string.format("0x%x", n)
end

-- A UInt64 as 0x..., without leading zeros.
local function hex64(u)
    local s = string.lower(u:tohex()):gsub("^0+", "")
    if s == "" then s = "0" end
    return "0x" .. s
end

-- A cursor over a message body: adds fields in order while bytes remain.
-- c.ok turns false (and a "too short" expert is added, once) when a field
-- does not fit; later adds are skipped.
local Cursor = {}
Cursor.__index = Cursor

local function cursor(tvb, off, lim, tree)
    return setmetatable({ tvb = tvb, off = off, start = off, lim = lim, tree = tree, ok = true }, Cursor)
end

function Cursor:left()
    return self.lim - self.off
end

function Cursor:need(len, what)
    if not self.ok then return false end
    if self.off + len > self.lim then
        self.ok = false
        self.tree:add_proto_expert_info(e.short, string.format("Body too short: %s needs %d bytes at body offset %d, %d left",
            what, len, self.off - self.start, self:left()))
        return false
    end
    return true
end

-- Adds a little-endian field of len bytes; returns its TvbRange (nil if it did not fit).
function Cursor:add(field, len, what, tree)
    if not self:need(len, what) then return nil end
    local r = self.tvb(self.off, len)
    ;(tree or self.tree):add_le(field, r)
    self.off = self.off + len
    return r
end

function Cursor:u32(field, what, tree)
    local r = self:add(field, 4, what, tree)
    return r and r:le_uint() or nil
end

function Cursor:u16(field, what, tree)
    local r = self:add(field, 2, what, tree)
    return r and r:le_uint() or nil
end

function Cursor:u64(field, what, tree)
    local r = self:add(field, 8, what, tree)
    return r and r:le_uint64() or nil
end

-- A flags word with its bits as subfields.
function Cursor:flags(field, bits, what, tree)
    if not self:need(4, what) then return nil end
    local r = self.tvb(self.off, 4)
    local item = (tree or self.tree):add_le(field, r)
    for _, b in ipairs(bits) do item:add_le(b, r) end
    self.off = self.off + 4
    return r:le_uint()
end

-- Up to n bytes (all that is left when n is nil) as a bytes field.
function Cursor:bytes(field, n, tree)
    if not self.ok then return 0 end
    local left = self:left()
    if n == nil or n > left then n = left end
    if n <= 0 then return 0 end
    ;(tree or self.tree):add(field, self.tvb(self.off, n))
    self.off = self.off + n
    return n
end

-- Reports what the body did not use.
function Cursor:finish()
    if self.ok and self.off < self.lim then
        local r = self.tvb(self.off, self.lim - self.off)
        self.tree:add(f.trailing, r)
        self.tree:add_proto_expert_info(e.trailing, string.format("%d bytes after the body", self.lim - self.off))
        self.off = self.lim
    end
end

-- Data whose length a count field announces.
local function data_with_count(c, field, count, what)
    local left = c:left()
    if count ~= nil and left ~= count then
        c.tree:add_proto_expert_info(e.count_mismatch, string.format("%s: count is %s but %d bytes of data follow", what, tostring(count), left))
    end
    c:bytes(field, nil)
end

----------------------------------------------------------------------
-- Bodies, one function per command: (cursor, header) -> info suffix
----------------------------------------------------------------------

local body = {}

body[CMD.VERSION] = function(c, h)
    local major = c:u16(f.version_major, "major")
    local minor = c:u16(f.version_minor, "minor")
    if c.ok and c:left() > 0 then
        local n = c:left()
        local raw = c.tvb:raw(c.off, n)
        local nul = string.find(raw, "\0", 1, true)
        local len = nul and (nul - 1) or n
        if len > 0 then
            local r = c.tvb(c.off, len)
            local item = c.tree:add(f.version_json, r, string.sub(raw, 1, len))
            if json_dissector then
                pcall(function() json_dissector:call(r:tvb(), h.pinfo, item) end)
            end
        end
        c.off = c.off + len + (nul and 1 or 0)
    end
    if major and minor then return string.format(" version=%d.%d", major, minor) end
    return ""
end

local dma_map_bits = { f.dma_flag_read, f.dma_flag_write }

body[CMD.DMA_MAP] = function(c, h)
    if h.reply then return "" end
    c:u32(f.argsz, "argsz")
    local flags = c:flags(f.dma_flags, dma_map_bits, "flags")
    local offset = c:u64(f.dma_offset, "offset")
    local addr = c:u64(f.dma_address, "address")
    local size = c:u64(f.dma_size, "size")
    if not size then return "" end
    local rw = (band(flags, 1) ~= 0 and "r" or "-") .. (band(flags, 2) ~= 0 and "w" or "-")
    local s = string.format(" address=%s size=%s %s", hex64(addr), hex64(size), rw)
    if h.fds > 0 then s = s .. string.format(" fd offset=%s", hex64(offset)) end
    return s
end

body[CMD.DMA_UNMAP] = function(c, h)
    c:u32(f.argsz, "argsz")
    local flags = c:flags(f.dma_flags, { f.dma_flag_unmap_all }, "flags")
    local addr = c:u64(f.dma_address, "address")
    local size = c:u64(f.dma_size, "size")
    if h.reply or not size then return "" end
    if band(flags, 2) ~= 0 then return " all" end
    return string.format(" address=%s size=%s", hex64(addr), hex64(size))
end

body[CMD.DEVICE_GET_INFO] = function(c, h)
    c:u32(f.argsz, "argsz")
    c:flags(f.device_flags, { f.device_flag_reset, f.device_flag_pci }, "flags")
    local regions = c:u32(f.device_num_regions, "num_regions")
    local irqs = c:u32(f.device_num_irqs, "num_irqs")
    if h.reply and irqs then return string.format(" regions=%d irqs=%d", regions, irqs) end
    return ""
end

local region_info_bits = { f.ri_flag_read, f.ri_flag_write, f.ri_flag_mmap, f.ri_flag_caps }

-- The capability chain of a region info reply; offsets are from the start of the body.
local function region_caps(c, first)
    local seen = {}
    local off = first
    local n = 0
    while off ~= 0 do
        n = n + 1
        if seen[off] or n > 64 then
            c.tree:add_proto_expert_info(e.bad_cap, string.format("capability chain loops at offset 0x%x", off))
            return
        end
        seen[off] = true
        local at = c.start + off
        if off < 32 or at + 8 > c.lim then
            c.tree:add_proto_expert_info(e.bad_cap, string.format("capability at offset 0x%x is outside the reply", off))
            return
        end
        local id = c.tvb(at, 2):le_uint()
        local nxt = c.tvb(at + 4, 4):le_uint()
        local sub = cursor(c.tvb, at, c.lim, nil)
        sub.start = c.start
        local item = c.tree:add(c.tvb(at, 8), string.format("Capability %s (%d) at 0x%x", REGION_CAPS[id] or "unknown", id, off))
        sub.tree = item
        sub:u16(f.cap_id, "cap id")
        sub:u16(f.cap_version, "cap version")
        sub:u32(f.cap_next, "cap next")
        local stop = c.lim
        if nxt > off and c.start + nxt <= c.lim then stop = c.start + nxt end
        if id == 1 then
            local nr = sub:u32(f.sparse_nr_areas, "nr_areas")
            sub:u32(f.sparse_reserved, "reserved")
            if nr then
                for i = 0, nr - 1 do
                    if not sub:need(16, "sparse area " .. i) then break end
                    local area = item:add(c.tvb(sub.off, 16), string.format("Area %d: offset %s size %s", i,
                        hex64(c.tvb(sub.off, 8):le_uint64()), hex64(c.tvb(sub.off + 8, 8):le_uint64())))
                    sub:u64(f.sparse_offset, "area offset", area)
                    sub:u64(f.sparse_size, "area size", area)
                end
            end
        elseif id == 2 then
            sub:u32(f.cap_type, "type")
            sub:u32(f.cap_subtype, "subtype")
        elseif stop > sub.off then
            sub:bytes(f.cap_data, stop - sub.off)
        end
        item:set_len(math.max(sub.off - at, 8))
        if sub.off > c.off then c.off = sub.off end
        off = nxt
    end
end

body[CMD.DEVICE_GET_REGION_INFO] = function(c, h)
    local argsz = c:u32(f.argsz, "argsz")
    c:flags(f.ri_flags, region_info_bits, "flags")
    local index = c:u32(f.ri_index, "index")
    local cap_offset = c:u32(f.ri_cap_offset, "cap_offset")
    local size = c:u64(f.ri_size, "size")
    c:u64(f.ri_offset, "offset")
    if h.reply and c.ok and cap_offset and cap_offset ~= 0 then
        local carried = c.lim - c.start
        if cap_offset >= carried and argsz > carried then
            -- "Message sizes": a reply shorter than argsz leaves the capabilities out.
            c.tree:add(c.tvb(c.start, carried), string.format("Capabilities not included: argsz %d is more than the %d bytes of this reply", argsz, carried))
        else
            region_caps(c, cap_offset)
        end
    end
    if index == nil then return "" end
    local s = string.format(" index=%d", index)
    if h.reply and size then s = s .. string.format(" size=%s", hex64(size)) end
    return s
end

body[CMD.DEVICE_GET_REGION_IO_FDS] = function(c, h)
    c:u32(f.argsz, "argsz")
    c:u32(f.io_flags, "flags")
    local index = c:u32(f.io_index, "index")
    local count = c:u32(f.io_count, "count")
    if h.reply and count and count > 0 and c.ok then
        local stride = 40
        local left = c:left()
        if left >= count * 40 and left % count == 0 then stride = math.floor(left / count) end
        for i = 0, count - 1 do
            if not c:need(40, "sub-region " .. i) then break end
            local at = c.off
            local item = c.tree:add(c.tvb(at, stride <= c.lim - at and stride or 40), string.format("Sub-region %d", i))
            c:u64(f.io_sub_offset, "offset", item)
            c:u64(f.io_sub_size, "size", item)
            c:u32(f.io_sub_fd_index, "fd_index", item)
            local t = c:u32(f.io_sub_type, "type", item)
            c:u32(f.io_sub_flags, "flags", item)
            c:u32(f.io_sub_padding, "padding", item)
            c:u64(t == 1 and f.io_sub_user_data or f.io_sub_datamatch, "data", item)
            c.off = math.min(at + stride, c.lim)
        end
    end
    if index == nil then return "" end
    if h.reply and count then return string.format(" index=%d count=%d", index, count) end
    return string.format(" index=%d", index)
end

body[CMD.DEVICE_GET_IRQ_INFO] = function(c, h)
    c:u32(f.argsz, "argsz")
    c:flags(f.irq_info_flags, { f.irq_info_eventfd, f.irq_info_maskable, f.irq_info_automasked, f.irq_info_noresize }, "flags")
    local index = c:u32(f.irq_index, "index")
    local count = c:u32(f.irq_count, "count")
    if index == nil then return "" end
    local s = string.format(" index=%s", IRQS[index] or tostring(index))
    if h.reply and count then s = s .. string.format(" count=%d", count) end
    return s
end

local irq_set_bits = {
    f.irq_set_data_none, f.irq_set_data_bool, f.irq_set_data_eventfd,
    f.irq_set_action_mask, f.irq_set_action_unmask, f.irq_set_action_trigger,
}

local function irq_set_flag_names(flags)
    local data = band(flags, 1) ~= 0 and "NONE" or band(flags, 2) ~= 0 and "BOOL" or band(flags, 4) ~= 0 and "EVENTFD" or "?"
    local action = band(flags, 8) ~= 0 and "MASK" or band(flags, 16) ~= 0 and "UNMASK" or band(flags, 32) ~= 0 and "TRIGGER" or "?"
    return "DATA_" .. data .. "|ACTION_" .. action
end

body[CMD.DEVICE_SET_IRQS] = function(c, h)
    if h.reply then return "" end
    c:u32(f.argsz, "argsz")
    local flags = c:flags(f.irq_set_flags, irq_set_bits, "flags")
    local index = c:u32(f.irq_index, "index")
    local start = c:u32(f.irq_start, "start")
    local count = c:u32(f.irq_count, "count")
    if count == nil then return "" end
    if band(flags, 2) ~= 0 then
        data_with_count(c, f.irq_set_data, count, "DATA_BOOL")
    end
    return string.format(" index=%s start=%d count=%d %s", IRQS[index] or tostring(index), start, count, irq_set_flag_names(flags))
end

-- REGION_READ request / REGION_WRITE reply: no data; REGION_READ reply / REGION_WRITE request: data.
local function region_access(c, h, with_data)
    local offset = c:u64(f.region_offset, "offset")
    local region = c:u32(f.region_index, "region")
    local count = c:u32(f.region_count, "count")
    if count == nil then return "" end
    if with_data then data_with_count(c, f.region_data, count, "data") end
    if h.reply then return "" end
    return string.format(" region=%d offset=%s count=%d", region, hex64(offset), count)
end

body[CMD.REGION_READ] = function(c, h) return region_access(c, h, h.reply) end
body[CMD.REGION_WRITE] = function(c, h) return region_access(c, h, not h.reply) end

body[CMD.REGION_WRITE_MULTI] = function(c, h)
    local n = c:u64(f.wr_cnt, "wr_cnt")
    if n == nil then return "" end
    local count = n:tonumber()
    if h.reply then return string.format(" writes=%d", count) end
    for i = 0, count - 1 do
        if not c:need(24, "write " .. i) then break end
        local item = c.tree:add(c.tvb(c.off, 24), string.format("Write %d", i))
        c:u64(f.region_offset, "offset", item)
        c:u32(f.region_index, "region", item)
        c:u32(f.region_count, "count", item)
        c:add(f.region_data, 8, "data", item)
    end
    return string.format(" writes=%d", count)
end

-- DMA_READ request / DMA_WRITE reply: no data; DMA_READ reply / DMA_WRITE request: data.
local function dma_access(c, h, with_data)
    local addr = c:u64(f.dma_address, "address")
    local count
    if h.reply and not with_data and c:left() == 4 then
        -- The specification's DMA_WRITE reply table gives count 4 bytes.
        count = c:u32(f.dma_count, "count")
    else
        local u = c:u64(f.dma_count, "count")
        count = u and u:tonumber() or nil
    end
    if count == nil then return "" end
    if with_data then data_with_count(c, f.dma_data, count, "data") end
    if h.reply then return "" end
    return string.format(" address=%s count=%d", hex64(addr), count)
end

body[CMD.DMA_READ] = function(c, h) return dma_access(c, h, h.reply) end
body[CMD.DMA_WRITE] = function(c, h) return dma_access(c, h, not h.reply) end

body[CMD.DEVICE_RESET] = function(c, h) return "" end

local feature_bits = { f.feature_index, f.feature_get, f.feature_set, f.feature_probe }

local function feature_data(c, h, feature, flags)
    if c:left() <= 0 then return end
    local get = band(flags, 0x10000) ~= 0
    local set = band(flags, 0x20000) ~= 0
    local probe = band(flags, 0x40000) ~= 0
    if probe then c:bytes(f.feature_data, nil) return end
    if feature == 1 and h.reply and get then
        c:u64(f.feature_mig_flags, "migration flags")
    elseif feature == 2 and ((set and not h.reply) or h.reply) then
        c:u32(f.feature_device_state, "device_state")
        c:u32(f.feature_data_fd, "data_fd")
    elseif feature == 6 and set then
        c:u64(f.feature_page_size, "page_size")
        local n = c:u32(f.feature_num_ranges, "num_ranges")
        c:u32(f.feature_reserved, "reserved")
        for i = 0, (n or 0) - 1 do
            if not c:need(16, "range " .. i) then break end
            local item = c.tree:add(c.tvb(c.off, 16), string.format("Range %d", i))
            c:u64(f.feature_iova, "iova", item)
            c:u64(f.feature_length, "length", item)
        end
    elseif feature == 8 and get then
        c:u64(f.feature_iova, "iova")
        c:u64(f.feature_length, "length")
        c:u64(f.feature_page_size, "page_size")
        if h.reply then c:bytes(f.feature_bitmap, nil) end
    end
    c:bytes(f.feature_data, nil)
end

body[CMD.DEVICE_FEATURE] = function(c, h)
    c:u32(f.argsz, "argsz")
    local flags = c:flags(f.feature_flags, feature_bits, "flags")
    if flags == nil then return "" end
    local feature = band(flags, 0xffff)
    feature_data(c, h, feature, flags)
    if h.reply then return "" end
    local op = {}
    if band(flags, 0x10000) ~= 0 then op[#op + 1] = "GET" end
    if band(flags, 0x20000) ~= 0 then op[#op + 1] = "SET" end
    if band(flags, 0x40000) ~= 0 then op[#op + 1] = "PROBE" end
    return string.format(" feature=%s %s", FEATURES[feature] or tostring(feature), table.concat(op, "|"))
end

local function mig_data(c, h, with_data)
    c:u32(f.argsz, "argsz")
    local size = c:u32(f.mig_size, "size")
    if size == nil then return "" end
    if with_data then
        data_with_count(c, f.mig_data, size, "data")
    end
    return string.format(" size=%d", size)
end

body[CMD.MIG_DATA_READ] = function(c, h) return mig_data(c, h, h.reply) end
body[CMD.MIG_DATA_WRITE] = function(c, h)
    if h.reply and c:left() == 0 then return "" end
    return mig_data(c, h, not h.reply)
end

----------------------------------------------------------------------
-- The dissector
----------------------------------------------------------------------

local PSEUDO = 8
local HEADER = 16

function vfio_user.dissector(tvb, pinfo, tree)
    local len = tvb:len()
    pinfo.cols.protocol:set("vfio-user")
    local root = tree:add(vfio_user, tvb())

    if len < PSEUDO then
        root:add_proto_expert_info(e.bad_pseudo, string.format("The packet has %d bytes, less than the 8-byte capture pseudo-header", len))
        pinfo.cols.info:set("Malformed capture record")
        return len
    end

    local ptree = root:add(tvb(0, PSEUDO), "Capture pseudo-header")
    ptree:add(f.encap_version, tvb(0, 1))
    local version = tvb(0, 1):uint()
    local direction = tvb(1, 1):uint()
    local kind = tvb(2, 1):uint()
    local fds = tvb(3, 1):uint()
    local session = tvb(4, 4):le_uint()
    if version ~= 1 then
        ptree:add_proto_expert_info(e.bad_pseudo, string.format("Encapsulation version %d, expected 1", version))
        pinfo.cols.info:set(string.format("Unknown encapsulation version %d", version))
        return len
    end
    ptree:add(f.direction, tvb(1, 1))
    ptree:add(f.record_kind, tvb(2, 1))
    ptree:add(f.fds, tvb(3, 1))
    ptree:add_le(f.session, tvb(4, 4))
    ptree:append_text(string.format(": session %d, %s", session, DIRECTIONS[direction] or "bad direction"))
    if DIRECTIONS[direction] == nil then
        ptree:add_proto_expert_info(e.bad_pseudo, string.format("Direction %d, expected 0 or 1", direction))
    end
    if direction == 0 then
        pinfo.cols.src:set("client")
        pinfo.cols.dst:set("server")
    elseif direction == 1 then
        pinfo.cols.src:set("server")
        pinfo.cols.dst:set("client")
    end

    if kind == 1 then
        local text = len > PSEUDO and tvb:raw(PSEUDO, len - PSEUDO) or ""
        if len > PSEUDO then root:add(f.label, tvb(PSEUDO, len - PSEUDO), text) end
        root:append_text(string.format(", Session %d: %s", session, text))
        pinfo.cols.info:set(string.format("session %d: %s", session, text))
        return len
    elseif kind ~= 0 then
        ptree:add_proto_expert_info(e.bad_pseudo, string.format("Record kind %d, expected 0 or 1", kind))
        pinfo.cols.info:set(string.format("Unknown record kind %d", kind))
        return len
    end

    local mlen = len - PSEUDO
    if mlen < HEADER then
        root:add_proto_expert_info(e.short, string.format("%d bytes, less than the 16-byte vfio-user header", mlen))
        pinfo.cols.info:set("Malformed vfio-user message")
        return len
    end

    local htree = root:add(tvb(PSEUDO, HEADER), "Header")
    local msg_id = tvb(PSEUDO, 2):le_uint()
    local cmd = tvb(PSEUDO + 2, 2):le_uint()
    local size = tvb(PSEUDO + 4, 4):le_uint()
    local flags = tvb(PSEUDO + 8, 4):le_uint()
    local errno = tvb(PSEUDO + 12, 4):le_uint()
    local reply = band(flags, 0xf) == 1
    local no_reply = band(flags, 0x10) ~= 0
    local is_error = band(flags, 0x20) ~= 0
    local name = COMMANDS[cmd]

    htree:add_le(f.msg_id, tvb(PSEUDO, 2))
    htree:add_le(f.cmd, tvb(PSEUDO + 2, 2))
    htree:add(f.cmd_name, tvb(PSEUDO + 2, 2), name or string.format("unknown (%d)", cmd)):set_generated()
    local size_item = htree:add_le(f.size, tvb(PSEUDO + 4, 4))
    local fl = htree:add_le(f.flags, tvb(PSEUDO + 8, 4))
    fl:add_le(f.flags_type, tvb(PSEUDO + 8, 4))
    fl:add_le(f.flags_no_reply, tvb(PSEUDO + 8, 4))
    fl:add_le(f.flags_error, tvb(PSEUDO + 8, 4))
    htree:add_le(f.error, tvb(PSEUDO + 12, 4))
    if is_error then
        htree:add(f.errno_name, tvb(PSEUDO + 12, 4), ERRNO[errno] or tostring(errno)):set_generated()
    end

    local lim = len
    if size ~= mlen then
        size_item:add_proto_expert_info(e.size_mismatch, string.format("Message size %d, but the packet holds %d bytes", size, mlen))
        if size >= HEADER and size < mlen then lim = PSEUDO + size end
    end

    local cname = name or string.format("command %d", cmd)
    local what = reply and "reply" or (band(flags, 0xf) == 0 and "request" or string.format("type %d", band(flags, 0xf)))
    local info = string.format("%s %s id=%d", cname, what, msg_id)
    local summary = string.format("%s %s", cname, what)

    if is_error then
        info = info .. string.format(" error=%s (%d)", ERRNO[errno] or "errno", errno)
        root:add_proto_expert_info(e.error_reply, string.format("%s failed: %s (%d)", cname, ERRNO[errno] or "errno", errno))
    end

    if lim > PSEUDO + HEADER or (not is_error and name) then
        local btree = root:add(tvb(PSEUDO + HEADER, math.max(lim - PSEUDO - HEADER, 0)), "Body")
        if lim == PSEUDO + HEADER then btree:set_text("Body: none") end
        local c = cursor(tvb, PSEUDO + HEADER, lim, btree)
        c.start = PSEUDO + HEADER
        local h = { reply = reply, no_reply = no_reply, error = is_error, fds = fds, pinfo = pinfo }
        local fn = body[cmd]
        if fn == nil then
            if name == nil then root:add_proto_expert_info(e.unknown_cmd, string.format("Unknown command %d", cmd)) end
            c:bytes(f.body, nil)
        elseif not is_error then
            info = info .. fn(c, h)
        end
        if is_error then c:bytes(f.body, nil) end
        c:finish()
        if lim < len then
            root:add(f.trailing, tvb(lim, len - lim))
        end
    end

    if no_reply then info = info .. " (no reply)" end
    if fds > 0 then info = info .. string.format(" fds=%d", fds) end
    root:append_text(string.format(", Session %d, %s, %s", session, DIRECTIONS[direction] or "?", summary))
    -- After the JSON dissector, which appends itself to the column.
    pinfo.cols.protocol:set("vfio-user")
    pinfo.cols.info:set(info)
    return len
end

DissectorTable.get("wtap_encap"):add((wtap_encaps or wtap).USER0, vfio_user)
