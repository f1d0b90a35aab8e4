#!/usr/bin/env bash
# Builds Xen's own, unmodified vPCI code (xen/drivers/vpci/*.c,
# xen/common/rangeset.c and xen/common/ioreq.c) as a user-space program against isoroot's emulation
# header and shim (harness/adapters/xen/shim), then runs the shim's
# self-test. Groundwork for a future `--target xen-vpci`. Xen 4.17, 4.21 and
# 4.22 are supported; what differs between them is named in one place, the
# SHIM_XEN_VERSION seams of shim/compat.h, plus the file lists below.
#
# Xen is GPLv2 and isoroot is MIT: Xen's files are copied only into OUT_DIR,
# outside the repository, from the user's (or Debian's) Xen tree.
# As Xen's own tools/tests/vpci Makefile does, the copies lose their #include
# lines and get `#include "emul.h"` in front of line 1; here the include lines
# are blanked rather than removed so that line numbers (assertions, gdb) are
# those of the Xen tree.
#
# Usage: scripts/build-xen-vpci.sh [XEN_TREE] [OUT_DIR]
#   XEN_TREE (empty: not given) defaults to the tree scripts/xen-source.sh
#     prints: Debian's xen source package for the system's release
#     (bookworm: 4.17.5) in $HOME/.cache/isoroot/xen-src, fetched with
#     `apt-get source` when not there yet.
#   OUT_DIR defaults to $HOME/.cache/isoroot/xen-build/<Xen version>.
# Writes OUT_DIR/xen-vpci-selftest, OUT_DIR/xen-vpci-agent (the same code
# driven over stdin/stdout, see harness/adapters/xen/shim/agent.c) and
# OUT_DIR/manifest.json (the copied
# files and their sha256). When harness/adapters/xen/manifests/<version>.json
# exists for the tree's Xen version, the tree's files are checked against it;
# a difference is reported (the build goes on: a patched tree is allowed) and
# shown again at the end. Exit status: the self-test's (0 ok), 2 when the
# build fails.
set -euo pipefail

me=build-xen-vpci
die() { echo "$me: error: $*" >&2; exit 2; }
log() { echo "$me: $*"; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
shim=$repo/harness/adapters/xen/shim
manifests=$repo/harness/adapters/xen/manifests
if [ -n "${1:-}" ]; then
  tree=$(realpath -m -- "$1")
else
  # Its last line of stdout is the tree; its messages go to stderr.
  tree=$(bash "$repo/scripts/xen-source.sh" | tail -n1) && [ -n "$tree" ] ||
    die "no Xen tree: scripts/xen-source.sh failed (see above); or give XEN_TREE"
  tree=$(realpath -m -- "$tree")    # as a given tree is named
fi
[ -f "$tree/xen/Makefile" ] || die "no Xen tree at $tree (xen/Makefile missing)"
command -v gcc >/dev/null || die "gcc missing (apt-get install build-essential)"

# Version from xen/Makefile: XEN_VERSION.XEN_SUBVERSION + XEN_EXTRAVERSION
# (the latter without its $(XEN_VENDORVERSION) suffix).
mkvar() {
  sed -n "s/^export $1[[:space:]]*?\{0,1\}=[[:space:]]*\([^\$[:space:]]*\).*/\1/p" \
    "$tree/xen/Makefile" | head -n1
}
major=$(mkvar XEN_VERSION); minor=$(mkvar XEN_SUBVERSION); extra=$(mkvar XEN_EXTRAVERSION)
[[ $major =~ ^[0-9]+$ && $minor =~ ^[0-9]+$ ]] || die "cannot read the version from $tree/xen/Makefile"
version=$major.$minor$extra
out=$(realpath -m -- "${2:-$HOME/.cache/isoroot/xen-build/$version}")
log "Xen $version from $tree"
log "build folder $out"

# What is copied, relative to the tree, per Xen version. Sources get emul.h;
# headers are included by emul.h itself. Sources are compiled and linked in
# the order of xen/drivers/vpci/Makefile, which is the order of vPCI's
# capability array from 4.21 on (see vpci_sections).
vpci=xen/drivers/vpci
headers=(xen/include/xen/vpci.h xen/include/xen/list.h xen/include/xen/rangeset.h)
case $major.$minor in
  4.17)
    sources=("$vpci/vpci.c" "$vpci/header.c" "$vpci/msi.c" "$vpci/msix.c")
    # REGISTER_VPCI_INIT: a pointer per init function in
    # .data.vpci.<priority>, sorted by name (MSI-X, the BARs, then MSI).
    vpci_sections='KEEP(*(SORT(.data.vpci.*)))' ;;
  4.21)
    sources=("$vpci/vpci.c" "$vpci/header.c" "$vpci/rebar.c" "$vpci/msi.c" "$vpci/msix.c")
    # REGISTER_VPCI_CAP/EXTCAP: a vpci_capability_t per capability in
    # .data.rel.ro.vpci, in link order (xen.lds.h's VPCI_ARRAY).
    vpci_sections='KEEP(*(.data.rel.ro.vpci))' ;;
  4.22)
    sources=("$vpci/cap.c" "$vpci/vpci.c" "$vpci/header.c" "$vpci/rebar.c" "$vpci/msi.c" "$vpci/msix.c")
    headers+=("$vpci/private.h")
    vpci_sections='KEEP(*(.data.rel.ro.vpci))' ;;
  *)
    die "Xen $version is not supported (4.17, 4.21 and 4.22 are): its seams in harness/adapters/xen/shim/compat.h are not written" ;;
esac
sources+=(xen/common/rangeset.c xen/common/ioreq.c)
# ioreq servers (the device models' side of routing): ioreq.c and the
# headers its structures come from.
headers+=(xen/include/xen/ioreq.h xen/include/public/hvm/ioreq.h xen/include/public/hvm/dm_op.h)

# Check the tree against the reference manifest for this version, if any.
differ=()
ref_manifest=$manifests/$version.json
ref_name=${ref_manifest#"$repo/"}
if [ -f "$ref_manifest" ]; then
  for f in "${sources[@]}" "${headers[@]}"; do
    want=$(sed -n "s|.*\"path\": *\"$f\", *\"sha256\": *\"\([0-9a-f]*\)\".*|\1|p" "$ref_manifest")
    [ -f "$tree/$f" ] || die "$f missing from the tree"
    got=$(sha256sum "$tree/$f" | cut -d' ' -f1)
    if [ "$got" != "$want" ]; then
      differ+=("$f")
      echo "$me: WARNING: $f differs from the reference manifest for Xen $version" >&2
      echo "$me:   expected sha256 ${want:-(not listed)}, got $got" >&2
    fi
  done
  [ ${#differ[@]} -eq 0 ] && log "all ${#sources[@]} sources and ${#headers[@]} headers match $ref_name"
else
  have=$(cd "$manifests" && ls -- *.json 2>/dev/null | sed 's/\.json$//' | tr '\n' ' ' | sed 's/ $//')
  log "no reference manifest for Xen $version (have: ${have:-none}); files not checked"
fi

rm -rf "$out/src" "$out/obj"
mkdir -p "$out/src/xen/include/xen" "$out/src/$vpci" "$out/obj"
for f in "${sources[@]}" "${headers[@]}"; do
  [ -f "$tree/$f" ] || die "$f missing from the tree"
  mkdir -p "$out/src/$(dirname "$f")"
done
strip_includes='s/^[[:space:]]*#[[:space:]]*include[[:space:]].*$//'
for f in "${sources[@]}"; do
  # `#include "emul.h"` goes in front of line 1, which must be a comment's
  # start: a directive may be followed by a comment, not by code.
  head -n1 "$tree/$f" | grep -q '^/\*' || die "$f: line 1 is not a comment; cannot prepend emul.h"
  sed -e "$strip_includes" -e '1s/^/#include "emul.h" /' "$tree/$f" > "$out/src/$f"
done
for f in "${headers[@]}"; do
  sed -e "$strip_includes" "$tree/$f" > "$out/src/$f"
done

# vPCI's init array (see vpci_sections) is walked from __start_vpci_array
# to __end_vpci_array. Section names with dots get no __start_/__stop_
# symbols, so a linker script fragment collects and brackets them (a -T
# script's statements take their input sections before the default script's).
cat > "$out/vpci.lds" <<EOF
SECTIONS
{
  .data.vpci : ALIGN(8)
  {
    __start_vpci_array = .;
    $vpci_sections
    __end_vpci_array = .;
  }
}
INSERT AFTER .data;
EOF

cflags=(-O1 -g -std=gnu11 -malign-data=abi -fno-strict-aliasing -Wall
        "-DSHIM_XEN_VERSION=$(printf 0x%x $(( major << 8 | minor )))"
        -I "$shim" -I "$out/src/xen/include/xen" -I "$out/src/xen/include" -I "$out/src/$vpci")
log "gcc ${cflags[*]} (each .c; link with -Wl,-T,$out/vpci.lds)"
objs=()
# One file at a time (the machine is shared); relative paths so that
# __FILE__ in Xen's assertions names the file as in the Xen tree.
for f in "${sources[@]}"; do
  o=$out/obj/$(basename "${f%.c}").o
  (cd "$out/src" && gcc "${cflags[@]}" -c "$f" -o "$o") || die "compiling $f failed"
  objs+=("$o")
done
for f in shim compat guest ioreq-shim; do
  gcc "${cflags[@]}" -c "$shim/$f.c" -o "$out/obj/$f.o" || die "compiling $f.c failed"
  objs+=("$out/obj/$f.o")
done
for f in selftest agent; do
  gcc "${cflags[@]}" -c "$shim/$f.c" -o "$out/obj/$f.o" || die "compiling $f.c failed"
done
gcc -o "$out/xen-vpci-selftest" "${objs[@]}" "$out/obj/selftest.o" -Wl,-T,"$out/vpci.lds" \
  || die "linking failed"
# The same objects behind a line protocol on stdin/stdout, for isoroot's
# TypeScript side (harness/adapters/xen/agent.ts).
gcc -o "$out/xen-vpci-agent" "${objs[@]}" "$out/obj/agent.o" -Wl,-T,"$out/vpci.lds" \
  || die "linking the agent failed"
sym() { nm "$out/xen-vpci-selftest" | awk -v s="$1" '$3 == s { print $1 }'; }
# 4.17's entries are pointers; later ones are vpci_capability_t (24 bytes).
entry=8; [ "$major.$minor" = 4.17 ] || entry=24
n_init=$(( (0x$(sym __end_vpci_array) - 0x$(sym __start_vpci_array)) / entry ))
[ "$n_init" -gt 0 ] || die "the vPCI init array is empty (see vpci.lds)"
log "built $out/xen-vpci-selftest ($n_init vPCI init functions)"
log "built $out/xen-vpci-agent"

# Manifest of what was copied: the tree's files, before the include edit.
{
  printf '{\n  "xen_version": "%s",\n  "tree": "%s",\n  "files": [\n' "$version" "$tree"
  all=("${sources[@]}" "${headers[@]}"); i=0
  for f in "${all[@]}"; do
    i=$((i + 1)); sep=,; [ $i -eq ${#all[@]} ] && sep=
    printf '    { "path": "%s", "sha256": "%s" }%s\n' "$f" "$(sha256sum "$tree/$f" | cut -d' ' -f1)" "$sep"
  done
  printf '  ]\n}\n'
} > "$out/manifest.json"
log "wrote $out/manifest.json"

log "running the self-test"
status=0
"$out/xen-vpci-selftest" || status=$?
if [ ${#differ[@]} -gt 0 ]; then
  echo "$me: WARNING: built from a tree that differs from the reference manifest: ${differ[*]}" >&2
fi
exit "$status"
