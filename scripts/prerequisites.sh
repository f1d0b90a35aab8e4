#!/usr/bin/env bash
# Programs the test suites run besides Node: python3 (the example external
# target), pgrep (procps), Debian's chromium (the HTML report is checked
# in a real headless browser), Debian's tshark (the Wireshark dissector for
# vfio-user captures is checked with it) and Debian's QEMU (qemu-system-x86:
# the QEMU conformance suites run against it). Installs them from Debian's
# packages when missing and we are root; otherwise says what to install.
# As root it also installs QEMU 11 from trixie-backports into a private
# prefix (scripts/install-qemu-backports.sh): the vfio-user client suites
# need its vfio-user-pci.
# It also gets a Xen source tree for the Xen suites (scripts/xen-source.sh:
# Debian's xen source package; as root it adds deb-src entries derived from
# the system's own and installs dpkg-dev and build-essential if missing).
# With the argument "qemu", only QEMU (what a campaign on QEMU needs).
set -euo pipefail
missing=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || missing+=(qemu-system-x86)
if [ "${1:-}" != qemu ]; then
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
  command -v pgrep >/dev/null 2>&1 || missing+=(procps)
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  [ -x /usr/bin/tshark ] || missing+=(tshark)
  # The vfio-guest suites compile the guest's static agent.
  command -v gcc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
fi
# QEMU 11 (a vfio-user client) for the vfio-user suites, in a private prefix; quick when installed.
if [ "${1:-}" != qemu ] && [ "$(id -u)" = 0 ]; then
  bash "$(dirname "$0")/install-qemu-backports.sh" >/dev/null || echo "isoroot: QEMU 11 could not be installed; the vfio-user client suites need it" >&2
fi
# A Xen source tree (Debian's xen source package, apt-get source) for the Xen suites; quick when there.
if [ "${1:-}" != qemu ] && ! xen_err=$(bash "$(dirname "$0")/xen-source.sh" 2>&1 >/dev/null); then
  printf '%s\n' "$xen_err" | tail -n 20 >&2
  echo "isoroot: no Xen source tree (scripts/xen-source.sh failed, see above); the Xen suites need it" >&2
fi
# The vfio-guest target's guest (Debian's cloud kernel, busybox-static, isoroot's agent): quick when cached.
guest_image() {
  if [ "${1:-}" != qemu ] && command -v gcc >/dev/null 2>&1; then
    (cd "$(dirname "$0")/.." && node --import ./bin/register.mjs scripts/vfio-guest-image.ts >/dev/null) || echo "isoroot: the vfio-guest image could not be built; the vfio-guest suites need it" >&2
  fi
}
if [ ${#missing[@]} -eq 0 ]; then guest_image "${1:-}"; exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "isoroot: installing ${missing[*]} from Debian's packages" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  guest_image "${1:-}"
else
  echo "isoroot: needed: ${missing[*]} (apt-get install ${missing[*]})" >&2
  exit 1
fi
