#!/usr/bin/env bash
# Build Asterisk 22 LTS from Debian's own source package (suite sid, deb-src) into
# $PREFIX, with exactly the module set pbxctl loads (pbxctl/pbx/asterisk_modules.py).
# Idempotent and cached: if $PREFIX holds the same version built with the same module list
# and flags, nothing happens. Nothing is downloaded but from the Debian archive: pjproject
# comes from the source package's Xpjproject component, fetch tools are masked.
# A failed step stops with its name and the last lines of its log; the prefix is only ever
# replaced by a complete, installed tree (built under a staging DESTDIR, then renamed).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib-build.sh
. "$here/scripts/lib-build.sh"
PREFIX=${PBXCTL_AST22_PREFIX:-/opt/pbxctl/asterisk-22}
WORK=${PBXCTL_AST22_WORK:-/var/cache/pbxctl/asterisk22-build}
DL=${PBXCTL_AST22_DL:-$WORK/dl}  # the downloaded source package (kept between builds)
JOBS=${PBXCTL_BUILD_JOBS:-$(nproc)}
log="$WORK/build.log"
src_list=/etc/apt/sources.list.d/pbxctl-sid-src.sources
build_deps=(build-essential pkg-config bzip2 patch dpkg-dev libxml2-dev libxslt1-dev
            libsqlite3-dev uuid-dev libssl-dev libpq-dev libncurses-dev libedit-dev
            libjansson-dev libsrtp2-dev libspeexdsp-dev libogg-dev libvorbis-dev libgsm1-dev)

step() { printf '==> asterisk 22: %s\n' "$*"; }
fail() {
  printf 'make setup: Asterisk 22 build FAILED at step: %s\n--- last lines of %s ---\n' \
    "$1" "$log" >&2
  tail -n 25 "$log" >&2
  exit 1
}
run() { local what=$1; shift; printf '\n### %s\n' "$what" >>"$log"; "$@" >>"$log" 2>&1 || fail "$what"; }

mkdir -p "$WORK"
: >"$log"

modules=$(python3 "$here/pbxctl/pbx/asterisk_modules.py" 22) || fail "read the module list"
flags="--with-pjproject-bundled --with-gsm --without-sdl --localstatedir=$PREFIX/var"
# The recipe version: bump when the way we build changes (forces a rebuild).
recipe=2

sid_source() {
  cat <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
}

# --- which version would we build? ---------------------------------------------------------
if ! cmp -s <(sid_source) "$src_list" 2>/dev/null; then
  [[ $(id -u) -eq 0 ]] || { echo "make setup: building Asterisk 22 needs root" >&2; exit 1; }
  sid_source >"$src_list.tmp" && mv "$src_list.tmp" "$src_list"
  run "apt-get update (deb-src sid)" apt-get update -q -o Acquire::Check-Valid-Until=false
fi
version=$(apt-cache showsrc asterisk 2>/dev/null | awk '/^Version: 1:22\./ {print $2}' | sort -V | tail -n1)
if [[ -z "$version" ]]; then
  run "apt-get update (deb-src sid)" apt-get update -q -o Acquire::Check-Valid-Until=false
  version=$(apt-cache showsrc asterisk | awk '/^Version: 1:22\./ {print $2}' | sort -V | tail -n1)
fi
[[ -n "$version" ]] || fail "find an Asterisk 22 source package in sid"
want=$(printf '%s\n%s\n%s\n%s\n' "$version" "$recipe" "$flags" "$modules" | sha256sum | cut -d' ' -f1)
stamp="$PREFIX/.pbxctl-build"
exit_if_built "$PREFIX/sbin/asterisk" "$stamp" "$want" "$version"
step "building $version into $PREFIX (about 2-3 minutes on 2 cores; log: $log)"
t0=$(date +%s)

# --- build dependencies (only the missing ones) ------------------------------------------------
install_build_deps "${build_deps[@]}"

# --- source -----------------------------------------------------------------------------------
srcdir="$WORK/src-$(printf %s "$version" | tr -c "A-Za-z0-9.\n-" _)"  # make chokes on ":" in paths
if [[ ! -f "$srcdir/.unpacked" ]]; then
  rm -rf "$srcdir"
  mkdir -p "$DL"
  dsc=$(ls "$DL"/asterisk_"${version#*:}".dsc 2>/dev/null | head -n1 || true)
  if [[ -z "$dsc" ]]; then
    (cd "$DL" && run "apt-get source asterisk=$version" \
       apt-get source -q --download-only "asterisk=$version")
    dsc=$(ls "$DL"/asterisk_"${version#*:}".dsc | head -n1)
  fi
  (cd "$WORK" && run "dpkg-source -x" dpkg-source -x "$dsc" "$srcdir")
  touch "$srcdir/.unpacked"
fi
cd "$srcdir"

# Bundled pjproject without a download: a tarball made from the Xpjproject component.
pjver=$(sed -n 's/^PJPROJECT_VERSION *:\?= *//p' third-party/versions.mak | head -n1)
[[ -n "$pjver" && -d Xpjproject ]] || fail "find pjproject ($pjver) in the source package"
cache="$WORK/externals"
mkdir -p "$cache"
if [[ ! -f "$cache/pjproject-$pjver.tar.bz2" ]]; then
  rm -rf "$WORK/pj" && mkdir -p "$WORK/pj"
  cp -a Xpjproject "$WORK/pj/pjproject-$pjver"
  run "pack pjproject" tar -C "$WORK/pj" -cjf "$cache/pjproject-$pjver.tar.bz2" "pjproject-$pjver"
  rm -rf "$WORK/pj"
fi
(cd "$cache" && md5sum "pjproject-$pjver.tar.bz2") >"third-party/pjproject/pjproject-$pjver.tar.bz2.md5"
chmod +x debian/dummyprogs/fetch 2>/dev/null || true

# --- configure, choose modules, build, install --------------------------------------------
run "make distclean" bash -c 'make distclean >/dev/null 2>&1 || true'
run "configure" env ac_cv_path_WGET=: ac_cv_path_CURL=: ac_cv_path_LDCONFIG=: \
  FETCH="$srcdir/debian/dummyprogs/fetch" \
  ./configure --prefix="$PREFIX" $flags --with-externals-cache="$cache"
grep -q "Verify successful" "$log" || fail "configure: bundled pjproject not verified (would download)"
sed -i -E 's/=@PBX_[A-Z0-9_]+@$/=0/' build_tools/menuselect-deps
run "menuselect" make menuselect.makeopts
run "menuselect --disable-all" menuselect/menuselect --disable-all menuselect.makeopts
for m in $modules; do
  run "menuselect --enable $m" menuselect/menuselect --enable "$m" menuselect.makeopts
done
run "make -j$JOBS" make -j"$JOBS" NOISY_BUILD=
staging="$PREFIX.staging"
rm -rf "$staging"
run "make install" make install DESTDIR="$staging" LDCONFIG=:
# Every wanted module must have been built: a silent menuselect drop is a failed build.
for m in $modules; do
  [[ -f "$staging$PREFIX/lib/asterisk/modules/$m.so" ]] || fail "module $m was not built"
done
# 22 needs its own data dir (XML docs); sounds and music on hold come from Debian's packages.
data="$staging$PREFIX/var/lib/asterisk"
for d in sounds moh; do
  [[ -e "$data/$d" && ! -L "$data/$d" ]] && rm -rf "${data:?}/$d"
  ln -sfn "/usr/share/asterisk/$d" "$data/$d"
done
echo "$want" >"$staging$PREFIX/.pbxctl-build"
echo "$version" >"$staging$PREFIX/.pbxctl-version"

# --- swap the complete tree in -------------------------------------------------------------
old="$PREFIX.old.$$"
[[ -e "$PREFIX" ]] && mv "$PREFIX" "$old"
mv "$staging$PREFIX" "$PREFIX"
rm -rf "$staging" "$old"
step "built $version in $(( $(date +%s) - t0 )) s"
