#!/usr/bin/env bash
# Installs QEMU 11.x (qemu-system-x86 from Debian trixie-backports) into a
# private prefix and prints, as the last line of stdout, a wrapper to pass as
# `--qemu PATH` (or as ISOROOT_QEMU to the suites; .ci/run does). Everything
# else goes to stderr. The system is left alone: no package is installed,
# apt's configuration and dpkg's database are only read, never written.
# Idempotent: when the prefix is complete and its QEMU runs, it only prints
# the path (a fraction of a second); a prefix of ours that does not run is
# installed again. A failure (no network, no mirror) exits non-zero.
# Usage: scripts/install-qemu-backports.sh [PREFIX]
#   PREFIX defaults to $HOME/.cache/isoroot/qemu-backports.
#   ISOROOT_DEBIAN_MIRROR overrides the Debian mirror taken from apt's sources.
set -euo pipefail

me=install-qemu-backports
die() { echo "$me: error: $*" >&2; exit 1; }
log() { echo "$me: $*" >&2; }

prefix=$(realpath -m -- "${1:-$HOME/.cache/isoroot/qemu-backports}")
wrapper=$prefix/bin/qemu-system-x86_64
# Written last: its presence means the prefix is complete and ours.
stamp=$prefix/.isoroot-qemu-backports

# The QEMU a wrapper runs says it is 11.x, or the wrapper is not usable.
runs() {
  local v
  v=$("$1" -version 2>&1 | head -n1) || true
  case $v in
    "QEMU emulator version 11."*) return 0 ;;
    *) echo "$v"; return 1 ;;
  esac
}

if [ -x "$wrapper" ] && [ -f "$stamp" ]; then
  if why=$(runs "$wrapper"); then
    echo "$wrapper"
    exit 0
  fi
  log "$prefix is ours but its QEMU does not run ($why): installing it again"
fi

for c in apt-get dpkg unshare mount realpath; do
  command -v "$c" >/dev/null || die "'$c' not found (this needs a Debian-like system)"
done
[ "$(dpkg --print-architecture)" = amd64 ] || die "only amd64 hosts are supported"
if [ -e "$prefix" ] && [ ! -f "$stamp" ] && [ -n "$(ls -A -- "$prefix")" ]; then
  die "$prefix exists and is not a prefix made by this script; remove it or pick another PREFIX"
fi

# The mirror the system already uses for its own release (not -security, nor
# third-party repositories); trixie lives next to bookworm on any Debian mirror.
find_mirror() {
  local codename
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  [ -n "$codename" ] || return 0
  {
    { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true; } |
      sed -e 's/#.*//' -e 's/\[[^]]*\]//' |
      awk -v c="$codename" '$1 == "deb" && $3 == c { print $2 }'
    # deb822: one stanza per paragraph.
    { cat /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } |
      awk -v c="$codename" -v RS= -F'\n' '{
        types = uris = suites = ""; enabled = "yes"
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^#/) continue
          k = tolower($i); sub(/:.*/, "", k); v = $i; sub(/^[^:]*:[ \t]*/, "", v)
          if (k == "types") types = " " v " "
          else if (k == "uris") uris = v
          else if (k == "suites") suites = " " v " "
          else if (k == "enabled") enabled = tolower(v)
        }
        if (enabled != "no" && types ~ / deb / && suites ~ (" " c " ")) {
          n = split(uris, u, /[ \t]+/); for (j = 1; j <= n; j++) print u[j]
        }
      }'
  } | awk '!found && /^https?:\/\// { sub(/\/+$/, ""); print; found = 1 }'
}
mirror=${ISOROOT_DEBIAN_MIRROR:-$(find_mirror)}
[ -n "$mirror" ] || die "no Debian mirror found in /etc/apt/sources.list{,.d}; set ISOROOT_DEBIAN_MIRROR (e.g. http://deb.debian.org/debian)"
log "using mirror $mirror"

mkdir -p -- "$(dirname -- "$prefix")"
# Built beside PREFIX then renamed, so an interrupted run never leaves a
# half-made prefix that a later run would take for a complete one.
staging=$(mktemp -d -- "$prefix.new.XXXXXX")
chmod 755 "$staging"
work=$(mktemp -d)
trap 'rm -rf -- "$staging" "$work"' EXIT
trap 'exit 1' INT TERM HUP

# apt fetches as the unprivileged _apt user, which must be able to write
# where `apt-get download` puts the files.
chmod 755 "$work"
mkdir -p "$work"/{debs,empty,state/lists/partial,cache/archives/partial}
if [ "$(id -u)" = 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$work/debs"; fi
: >"$work/state/status"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
opts=
[ -f "$keyring" ] && opts="[signed-by=$keyring] "
printf 'deb %s%s %s main\n' "$opts" "$mirror" trixie "$opts" "$mirror" trixie-backports \
  >"$work/sources.list"

# Private sources, lists and cache. The empty status file makes apt resolve
# the whole dependency closure from trixie instead of counting bookworm's
# installed (older) libraries as satisfying it. The system's pins target its
# own release, so they are ignored too.
apt=(apt-get -q
  -o Dir::Etc::SourceList="$work/sources.list"
  -o Dir::Etc::SourceParts="$work/empty"
  -o Dir::Etc::Preferences="$work/empty/preferences"
  -o Dir::Etc::PreferencesParts="$work/empty"
  -o Dir::State="$work/state"
  -o Dir::State::status="$work/state/status"
  -o Dir::Cache="$work/cache")

log "fetching trixie and trixie-backports package lists"
"${apt[@]}" --error-on=any update >&2 || die "apt-get update failed for $mirror (trixie, trixie-backports)"

# Backports is pinned low, so the QEMU packages (and seabios, which QEMU 11
# needs newer than trixie's) are asked for from it explicitly; everything
# else comes from trixie. The simulation only resolves versions.
want=(qemu-system-x86/trixie-backports qemu-system-common/trixie-backports
  qemu-system-data/trixie-backports seabios/trixie-backports ipxe-qemu)
sim=$("${apt[@]}" -s --no-install-recommends install "${want[@]}" 2>&1) ||
  { echo "$sim" >&2; die "could not resolve QEMU's dependencies"; }
mapfile -t pkgs < <(awk '$1 == "Inst" { v = $3; sub(/^\(/, "", v); print $2 "=" v }' <<<"$sim")
[ ${#pkgs[@]} -gt 0 ] || { echo "$sim" >&2; die "apt resolved no packages"; }

log "downloading ${#pkgs[@]} packages"
(cd "$work/debs" && "${apt[@]}" download "${pkgs[@]}" >&2) || die "download failed"

log "extracting into $prefix"
for deb in "$work"/debs/*.deb; do
  dpkg -x "$deb" "$staging" || die "could not extract $(basename "$deb")"
done
[ -x "$staging/usr/bin/qemu-system-x86_64" ] && [ -e "$staging/usr/lib64/ld-linux-x86-64.so.2" ] ||
  die "extracted packages lack qemu-system-x86_64 or the dynamic loader"

# The wrapper finds its prefix from its own path, so it also works in staging.
# QEMU's compiled-in module directory is /usr/lib/x86_64-linux-gnu/qemu; if
# the system's QEMU keeps its (older) modules there, QEMU loads them for
# anything ours lacks and aborts. So ours are bind-mounted over it in a
# private mount namespace (nothing propagates to the host). If the directory
# does not exist there is nothing to hide and QEMU_MODULE_DIR, searched first,
# finds ours. Each step execs, so QEMU keeps the wrapper's PID and process group.
mkdir -p "$staging/bin"
cat >"$staging/bin/qemu-system-x86_64" <<'EOF'
#!/bin/sh
# Runs the QEMU 11 installed by isoroot's scripts/install-qemu-backports.sh
# with its own loader, libraries, firmware and modules (see that script).
p=$(readlink -f -- "$0") && p=${p%/bin/*}
userns=
[ "$(id -u)" = 0 ] || userns=--map-root-user
exec unshare --mount --propagation private $userns -- /bin/sh -c '
  p=$1; shift
  m=/usr/lib/x86_64-linux-gnu/qemu
  if [ -d "$m" ]; then
    mount --bind "$p$m" "$m" || { echo "qemu wrapper: cannot mount $p$m over $m" >&2; exit 1; }
  fi
  export QEMU_MODULE_DIR="$p$m"
  exec "$p/usr/lib64/ld-linux-x86-64.so.2" --library-path "$p/usr/lib/x86_64-linux-gnu" \
    "$p/usr/bin/qemu-system-x86_64" -L "$p/usr/share/qemu" -L "$p/usr/share/seabios" "$@"
' sh "$p" "$@"
EOF
chmod 755 "$staging/bin/qemu-system-x86_64"

why=$(runs "$staging/bin/qemu-system-x86_64") || die "the installed QEMU does not run: $why"
log "installed: $("$staging/bin/qemu-system-x86_64" -version | head -n1)"
printf '%s\n' "${pkgs[@]}" >"$staging/.isoroot-qemu-backports"

# Replace an earlier (incomplete or stale) prefix of ours; checked above.
if [ -e "$prefix" ]; then rm -rf -- "$prefix"; fi
mv -T -- "$staging" "$prefix"
echo "$wrapper"
