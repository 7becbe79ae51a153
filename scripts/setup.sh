#!/usr/bin/env bash
# Idempotent set-up for pbxctl on Debian 12/13 (run as root for the apt part).
# Installs only what is missing; a second run with everything present changes nothing.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib-build.sh
. "$here/scripts/lib-build.sh"  # missing_debs
venv="$here/.venv"
log=$(mktemp /tmp/pbxctl-setup.XXXXXX.log)
apt_src=/etc/apt/sources.list.d/pbxctl-bullseye.sources
debs=(asterisk asterisk-modules asterisk-config asterisk-core-sounds-en-gsm asterisk-moh-opsound-gsm
      sip-tester espeak-ng sox postgresql iproute2 procps
      chromium chromium-driver fonts-wqy-microhei)  # the console's browser tests

step() { printf '==> %s\n' "$*"; }
fail() {
  printf 'make setup: FAILED at step: %s\n--- last lines of %s ---\n' "$1" "$log" >&2
  tail -n 25 "$log" >&2
  exit 1
}
run() { local what=$1; shift; "$@" >>"$log" 2>&1 || fail "$what"; }

bullseye_source() {
  cat <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bullseye
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bullseye-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
}

# --- Debian packages -------------------------------------------------------
mapfile -t need < <(missing_debs "${debs[@]}")
if ((${#need[@]})); then
  [[ $(id -u) -eq 0 ]] || { echo "make setup: missing Debian packages (${need[*]}); run make setup as root" >&2; exit 1; }
  step "installing Debian packages: ${need[*]}"
  # Asterisk is in neither Debian 12 nor 13: Debian 11's 16.28 build installs on both.
  if ! cmp -s <(bullseye_source) "$apt_src" 2>/dev/null; then
    bullseye_source >"$apt_src.tmp" && mv "$apt_src.tmp" "$apt_src"
  fi
  run "apt-get update" apt-get update -q
  run "apt-get install ${need[*]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -q --no-install-recommends "${need[@]}"
  # Debian starts a system cluster and an Asterisk service we do not use: the
  # tests run private instances. Leave the services alone otherwise.
  systemctl disable --now asterisk >>"$log" 2>&1 || true
else
  step "Debian packages present"
fi

# --- Asterisk 22 (the default engine), built from Debian's source package ------
"$here/scripts/build-asterisk22.sh"

# --- FreeSWITCH 1.10.12, built from the vendored upstream sources (digests checked) ------------
"$here/scripts/build-freeswitch.sh"

# --- Python venv -----------------------------------------------------------
py=${PYTHON:-python3}
"$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "make setup: $py is older than 3.11; set PYTHON=python3.11" >&2; exit 1; }
if [[ ! -x "$venv/bin/python" ]]; then
  step "creating venv $venv"
  run "python venv" "$py" -m venv "$venv"
fi
stamp="$venv/.pbxctl-setup-stamp"
want=$(cat "$here/setup.cfg" "$here/pyproject.toml" | sha256sum | cut -d' ' -f1)
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]] || ! "$venv/bin/python" -c 'import pbxctl' 2>/dev/null; then
  step "installing pbxctl (editable) with test and dev extras"
  run "pip upgrade" "$venv/bin/pip" install -q --upgrade pip
  run "pip install -e .[dev]" "$venv/bin/pip" install -q -e "$here[dev]"
  echo "$want" >"$stamp"
else
  step "venv up to date"
fi
rm -f "$log"
step "setup done"
