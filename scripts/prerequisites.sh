#!/usr/bin/env bash
# Programs the test suites run besides Node: python3 (the example external
# target), pgrep (procps), and Debian's chromium (the HTML report is checked
# in a real headless browser). Installs them from Debian's packages when
# missing and we are root; otherwise says what to install.
set -euo pipefail
missing=()
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v pgrep >/dev/null 2>&1 || missing+=(procps)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "isoroot: installing ${missing[*]} from Debian's packages" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "isoroot: the test suites need: ${missing[*]} (apt-get install ${missing[*]})" >&2
  exit 1
fi
