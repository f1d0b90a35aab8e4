#!/usr/bin/env bash
# Finds or gets the Xen source tree that scripts/build-xen-vpci.sh builds
# Xen's vPCI code from, and prints its path as the last line of stdout
# (everything else goes to stderr). Xen is GPLv2 and isoroot is MIT: the
# tree lives outside the repository and is never committed.
#
# Usage: scripts/xen-source.sh [--xen-src DIR] [--no-fetch]
#   --xen-src DIR  a Xen tree of the user's (a checkout, any version): checked
#                  to have xen/drivers/vpci/vpci.c and xen/Makefile, then
#                  printed (as an absolute path).
#   without it     Debian's `xen` source package for the system's release
#                  (bookworm: 4.17.x), from `apt-get source` into
#                  $HOME/.cache/isoroot/xen-src. A tree unpacked there
#                  already is reused (the newest, by version): no network.
#   --no-fetch     change nothing: no download, no apt configuration, no
#                  installation; only an existing tree is printed (the
#                  suites use this to find theirs).
#
# Getting the source package needs deb-src entries. They are derived from
# the system's own sources (/etc/apt/sources.list and sources.list.d/*.list,
# one-line `deb ...`; sources.list.d/*.sources, deb822 `Types: deb`): the
# entries for the system's release (its codename, codename-updates,
# codename-security...; third-party repositories are left alone) that have
# no deb-src twin yet are written, as deb-src, into
# /etc/apt/sources.list.d/isoroot-deb-src.sources (.list for one-line
# entries), and `apt-get update` runs. That, and installing dpkg-dev (for
# dpkg-source) and build-essential (gcc, make, binutils) when missing, needs
# root; otherwise the script says what to run and exits 2.
# Exit status: 0 with the path printed; 2 on any failure.
set -euo pipefail

me=xen-source
die() { echo "$me: error: $*" >&2; exit 2; }
log() { echo "$me: $*" >&2; }
usage() { sed -n 's/^# \{0,1\}//; 7,17p' "${BASH_SOURCE[0]}" >&2; }

src=
fetch=1
while [ $# -gt 0 ]; do
  case $1 in
    --xen-src) [ $# -ge 2 ] || die "--xen-src needs a directory"; src=$2; shift 2 ;;
    --xen-src=*) src=${1#--xen-src=}; shift ;;
    --no-fetch) fetch=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage; die "unknown argument '$1'" ;;
  esac
done

self=$(realpath -- "${BASH_SOURCE[0]}")
cache=$HOME/.cache/isoroot/xen-src
deb_src_file=/etc/apt/sources.list.d/isoroot-deb-src
needed=(xen/drivers/vpci/vpci.c xen/Makefile)
is_root() { [ "$(id -u)" = 0 ]; }

# Installs Debian packages as root; otherwise says what to run.
apt_install() {
  if ! is_root || ! command -v apt-get >/dev/null 2>&1; then
    die "needed: $* (run: sudo apt-get install $*)"
  fi
  log "installing $* from Debian's packages"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2; then
    apt-get update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2 || die "apt-get install $* failed"
  fi
}

# What the build runs: gcc, and nm from binutils (make for Xen's own tests).
build_tools() {
  [ $fetch = 1 ] || return 0
  local t
  for t in gcc make nm; do
    if ! command -v "$t" >/dev/null 2>&1; then apt_install build-essential; return 0; fi
  done
}

# A user's tree.
if [ -n "$src" ]; then
  dir=$(realpath -m -- "$src")
  [ -d "$dir" ] || die "--xen-src $src: no such directory"
  for f in "${needed[@]}"; do
    [ -f "$dir/$f" ] || die "--xen-src $src is not a Xen tree: $dir/$f is missing"
  done
  build_tools
  echo "$dir"
  exit 0
fi

# The newest complete tree in the cache (fetches unpack elsewhere first and
# are moved in only when complete).
cached_tree() {
  local d f ok
  for d in "$cache"/*/; do
    d=${d%/}
    ok=1
    for f in "${needed[@]}"; do
      if [ ! -f "$d/$f" ]; then ok=0; fi
    done
    if [ $ok = 1 ]; then printf '%s\n' "$d"; fi
  done | sort -V | tail -n1
}
tree=$(cached_tree)
if [ -n "$tree" ]; then
  build_tools
  echo "$tree"
  exit 0
fi
[ $fetch = 1 ] || die "no Xen tree in $cache: scripts/xen-source.sh gets Debian's (bash scripts/prerequisites.sh runs it), or give one with --xen-src DIR"

command -v apt-get >/dev/null 2>&1 || die "apt-get not found: give a Xen tree with --xen-src DIR"
codename=$( (. /etc/os-release && echo "${VERSION_CODENAME:-}") 2>/dev/null || true)
build_tools
command -v dpkg-source >/dev/null 2>&1 || apt_install dpkg-dev

# deb-src entries for the release's `deb` entries that have none yet.
# want=list: one-line entries (deb-src lines); want=sources: deb822 stanzas.
sources=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  if [ -f "$f" ]; then sources+=("$f"); fi
done
[ ${#sources[@]} -gt 0 ] || die "no apt sources found in /etc/apt/sources.list{,.d}: give a Xen tree with --xen-src DIR"
derive() {
  awk -v want="$1" -v c="$codename" '
    function norm(u) { sub(/\/+$/, "", u); return u }
    function trim(s) { gsub(/^[ \t]+|[ \t]+$/, "", s); gsub(/[ \t]+/, " ", s); return s }
    # The system release and its pockets (codename-updates, -security, ...).
    function rel(s) { return c == "" || s == c || index(s, c "-") == 1 || index(s, c "/") == 1 }
    function flush(   nu, ns, u, s, i, j) {
      if (!stanza) return
      stanza = 0
      if (enabled == "no") return
      types = " " trim(types) " "
      if (types ~ / deb-src /) {
        nu = split(trim(uris), u, " "); ns = split(trim(suites), s, " ")
        for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++) have[norm(u[i]) SUBSEP s[j]] = 1
      }
      if (types ~ / deb /) { n822++; su[n822] = trim(uris); ss[n822] = trim(suites); sr[n822] = rest }
    }
    FNR == 1 { flush() }
    FILENAME ~ /\.list$/ {
      line = $0; sub(/#.*/, "", line); opts = ""
      if (match(line, /\[[^]]*\]/)) {
        opts = substr(line, RSTART, RLENGTH) " "
        line = substr(line, 1, RSTART - 1) " " substr(line, RSTART + RLENGTH)
      }
      $0 = line
      if (NF < 3) next
      if ($1 == "deb-src") have[norm($2) SUBSEP $3] = 1
      else if ($1 == "deb") {
        comps = ""; for (i = 4; i <= NF; i++) comps = comps " " $i
        nl++; lu[nl] = $2; ls[nl] = $3; ll[nl] = "deb-src " opts $2 " " $3 comps
      }
      next
    }
    /^[ \t]*$/ { flush(); next }
    /^#/ { next }
    {
      if (!stanza) { stanza = 1; types = uris = suites = rest = last = ""; enabled = "yes" }
      if ($0 ~ /^[ \t]/) {
        if (last == "types") types = types " " $0
        else if (last == "uris") uris = uris " " $0
        else if (last == "suites") suites = suites " " $0
        else if (last == "rest") rest = rest "\n" $0
        next
      }
      k = tolower($0); sub(/:.*/, "", k); v = $0; sub(/^[^:]*:[ \t]*/, "", v)
      if (k == "types") { types = v; last = k }
      else if (k == "uris") { uris = v; last = k }
      else if (k == "suites") { suites = v; last = k }
      else if (k == "enabled") { enabled = tolower(trim(v)); last = "" }
      else { rest = rest (rest == "" ? "" : "\n") $0; last = "rest" }
    }
    END {
      flush()
      if (want == "list")
        for (i = 1; i <= nl; i++)
          if (rel(ls[i]) && !((norm(lu[i]) SUBSEP ls[i]) in have)) print ll[i]
      if (want == "sources")
        for (i = 1; i <= n822; i++) {
          nu = split(su[i], u, " "); ns = split(ss[i], s, " "); keep = ""
          for (j = 1; j <= ns; j++) {
            if (!rel(s[j])) continue
            miss = 0
            for (k = 1; k <= nu; k++) if (!((norm(u[k]) SUBSEP s[j]) in have)) miss = 1
            if (miss) keep = keep (keep == "" ? "" : " ") s[j]
          }
          if (keep == "") continue
          printf "%sTypes: deb-src\nURIs: %s\nSuites: %s\n", (out++ ? "\n" : ""), su[i], keep
          if (sr[i] != "") print sr[i]
        }
    }' "${sources[@]}"
}
new_list=$(derive list)
new_sources=$(derive sources)
wrote=0
if [ -n "$new_list$new_sources" ]; then
  if ! is_root; then
    {
      echo "$me: apt has no deb-src entries for ${codename:-this system}'s Xen source package. As root, run"
      echo "  sudo bash $self"
      echo "which adds these entries, derived from the system's own, and runs apt-get update:"
      [ -z "$new_sources" ] || printf '  in %s.sources:\n%s\n' "$deb_src_file" "$new_sources"
      [ -z "$new_list" ] || printf '  in %s.list:\n%s\n' "$deb_src_file" "$new_list"
    } >&2
    die "deb-src entries needed (or give a Xen tree with --xen-src DIR)"
  fi
  append() { # FILE TEXT
    if [ -s "$1" ]; then printf '\n%s\n' "$2" >>"$1"; else
      printf '# deb-src entries derived from this system'"'"'s apt sources by isoroot (scripts/xen-source.sh),\n# for `apt-get source xen`.\n%s\n' "$2" >"$1"
    fi
    log "wrote deb-src entries into $1"
  }
  [ -z "$new_sources" ] || append "$deb_src_file.sources" "$new_sources"
  [ -z "$new_list" ] || append "$deb_src_file.list" "$new_list"
  wrote=1
else
  if [ -z "$(awk '/^deb-src/' "${sources[@]}"; grep -il '^types:.*deb-src' "${sources[@]}" 2>/dev/null || true)" ]; then
    die "no deb entries for ${codename:-this release} found in ${sources[*]} to derive deb-src entries from: add deb-src entries for Debian's sources yourself, or give a Xen tree with --xen-src DIR"
  fi
fi

# (grep -c reads everything: grep -q would end apt-cache with SIGPIPE, a failure under pipefail.)
has_xen_source() { [ "$(apt-cache showsrc --only-source xen 2>/dev/null | grep -c '^Package: xen$')" -gt 0 ]; }
if [ $wrote = 1 ] || ! has_xen_source; then
  is_root || die "apt knows no source package xen yet: run sudo apt-get update (or give a Xen tree with --xen-src DIR)"
  log "apt-get update"
  apt-get update -q >&2 || log "apt-get update reported errors; trying anyway"
fi
has_xen_source || die "apt knows no source package xen (apt-cache showsrc xen is empty): give a Xen tree with --xen-src DIR"

# Fetched and unpacked beside the cache's trees, moved in when complete.
mkdir -p -- "$cache"
work=$(mktemp -d -- "$cache/.fetch.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
trap 'exit 2' INT TERM HUP
# The release's own version first: its -security or -updates pocket may
# list a newer version that the mirror does not serve.
got=0
for what in ${codename:+xen/$codename} xen; do
  log "apt-get source $what (into $cache)"
  if (cd "$work" && apt-get source -q "$what" >&2); then got=1; break; fi
  rm -rf -- "${work:?}"/* "${work:?}"/.[!.]* 2>/dev/null || true
done
[ $got = 1 ] || die "apt-get source xen failed (see above): give a Xen tree with --xen-src DIR"
tree=
for d in "$work"/*/; do
  d=${d%/}
  if [ -f "$d/xen/drivers/vpci/vpci.c" ] && [ -f "$d/xen/Makefile" ]; then tree=$d; fi
done
[ -n "$tree" ] || die "apt-get source xen unpacked no Xen tree (no xen/drivers/vpci/vpci.c in $work)"
name=$(basename -- "$tree")
# A directory of that name here is not a complete tree (cached_tree found none).
rm -rf -- "${cache:?}/$name"
mv -T -- "$tree" "$cache/$name"
for f in "$work"/*; do
  if [ -f "$f" ]; then mv -f -- "$f" "$cache/"; fi
done
log "Xen source: $cache/$name"
echo "$cache/$name"
