#!/usr/bin/env bash
# Build FreeSWITCH 1.10.12 (with sofia-sip 1.13.17 and spandsp 0d2e6ac, which Debian lacks)
# from the unmodified upstream sources in ../shared/vendor/freeswitch/, digests checked, into
# $PREFIX with the call-center module set pbxctl uses. Idempotent and cached by a stamp of the
# sources' digests, the module list and this recipe. The stamp is written last: a prefix
# without it is never used (and is rebuilt from scratch). Measured recipe and pitfalls:
# ../shared/FREESWITCH-BUILD.md.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib-build.sh
. "$here/scripts/lib-build.sh"
PREFIX=${PBXCTL_FS_PREFIX:-/opt/pbxctl/freeswitch-1.10}
VENDOR=${PBXCTL_FS_VENDOR:-$here/../shared/vendor/freeswitch}
WORK=${PBXCTL_FS_WORK:-/var/cache/pbxctl/freeswitch-build}
JOBS=${PBXCTL_BUILD_JOBS:-$(nproc)}
log="$WORK/build.log"
recipe=1
build_deps=(autoconf automake libtool libtool-bin pkg-config build-essential uuid-dev
            zlib1g-dev libjpeg-dev libsqlite3-dev libcurl4-openssl-dev libpcre3-dev
            libspeex-dev libspeexdsp-dev libedit-dev libtiff-dev libssl-dev libsndfile1-dev
            libopus-dev)
modules=(loggers/mod_console loggers/mod_logfile applications/mod_commands
         applications/mod_dptools applications/mod_db applications/mod_hash applications/mod_expr
         applications/mod_callcenter applications/mod_spandsp dialplans/mod_dialplan_xml
         endpoints/mod_sofia endpoints/mod_loopback event_handlers/mod_event_socket
         event_handlers/mod_cdr_csv
         formats/mod_sndfile formats/mod_native_file formats/mod_tone_stream say/mod_say_en
         codecs/mod_opus)

step() { printf '==> freeswitch: %s\n' "$*"; }
fail() {
  printf 'make setup: FreeSWITCH build FAILED at step: %s\n--- last lines of %s ---\n' \
    "$1" "$log" >&2
  tail -n 25 "$log" >&2 2>/dev/null || true
  exit 1
}
run() { local what=$1; shift; printf '\n### %s\n' "$what" >>"$log"; "$@" >>"$log" 2>&1 || fail "$what"; }

mkdir -p "$WORK"
: >"$log"
if [[ ! -f "$VENDOR/SHA256SUMS" ]]; then
  # No vendored sources (a machine without ../shared): the same refs from upstream, each
  # verified by its pinned git tree hash (scripts/fetch-freeswitch-sources.sh). This path
  # cannot be exercised where pbxctl is developed (no route to GitHub): a failed fetch says
  # so and builds nothing, since the Asterisk engines do not need FreeSWITCH.
  fetched="$WORK/vendor"
  if [[ -f "$fetched/SHA256SUMS" ]] || "$here/scripts/fetch-freeswitch-sources.sh" "$fetched" >>"$log" 2>&1; then
    VENDOR=$fetched
  else
    step "no sources in $VENDOR and fetching them from upstream failed (see $log): FreeSWITCH not built (the Asterisk engines do not need it)"
    exit 0
  fi
fi
(cd "$VENDOR" && sha256sum --quiet -c SHA256SUMS) >>"$log" 2>&1 || fail "check the source digests"
want=$( (cat "$VENDOR/SHA256SUMS"; printf '%s\n' "$recipe" "${modules[@]}") | sha256sum | cut -d' ' -f1)
stamp="$PREFIX/.pbxctl-build"
exit_if_built "$PREFIX/bin/freeswitch" "$stamp" "$want" "1.10.12"
step "building 1.10.12 into $PREFIX (about 2-3 minutes on 2 cores; log: $log)"
t0=$(date +%s)

install_build_deps "${build_deps[@]}"

rm -rf "$PREFIX" "$WORK/src"
mkdir -p "$WORK/src"
for t in sofia-sip-1.13.17 spandsp-0d2e6ac freeswitch-1.10.12; do
  run "unpack $t" tar -C "$WORK/src" -xJf "$VENDOR/$t.tar.xz"
done
export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig"
export LDFLAGS="-L$PREFIX/lib -Wl,-rpath,$PREFIX/lib"
export CPPFLAGS="-I$PREFIX/include"

srcdir() { find "$WORK/src" -maxdepth 1 -type d -name "$1*" | head -n1; }
cd "$(srcdir sofia-sip)"
run "sofia-sip bootstrap" ./bootstrap.sh
run "sofia-sip configure" ./configure --prefix="$PREFIX" --with-pic --with-glib=no \
  --without-doxygen --disable-stun --disable-static
run "sofia-sip make" make -j"$JOBS"
run "sofia-sip install" make install

cd "$(srcdir spandsp)"
run "spandsp bootstrap" ./bootstrap.sh
run "spandsp configure" ./configure --prefix="$PREFIX" --with-pic --disable-static
run "spandsp make" make -j"$JOBS"
run "spandsp install" make install

cd "$(srcdir freeswitch)"
printf '%s\n' "${modules[@]}" >modules.conf  # before bootstrap, or it pulls verto/signalwire
run "freeswitch bootstrap" ./bootstrap.sh -j
run "freeswitch configure" ./configure --prefix="$PREFIX" --disable-libvpx --disable-libyuv \
  --without-png --without-freetype --disable-core-odbc-support --disable-debug
run "freeswitch make -j$JOBS" make -j"$JOBS"
run "freeswitch install" make install
for m in "${modules[@]}"; do
  [[ -f "$PREFIX/lib/freeswitch/mod/${m#*/}.so" ]] || fail "module ${m#*/} was not built"
done
# The vanilla config, fonts and web files are not ours: every instance gets its own config.
rm -rf "$PREFIX/etc/freeswitch" "$PREFIX/share/freeswitch/fonts" "$PREFIX/share/freeswitch/htdocs"
echo "$want" >"$stamp"
step "built in $(( $(date +%s) - t0 )) s"
