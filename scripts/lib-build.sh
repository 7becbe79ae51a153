# Sourced by setup.sh and the engine build scripts: which Debian packages are missing, and
# installing only those.
# --no-upgrade: naming an installed -dev package must not upgrade its runtime library under a
# running PBX. Uses the caller's `step` and `run` (its log and its failure message).
missing_debs() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"
  done
}

install_build_deps() {
  local -a missing
  mapfile -t missing < <(missing_debs "$@")
  ((${#missing[@]})) || return 0
  step "installing build dependencies: ${missing[*]}"
  run "apt-get update" apt-get update -q
  run "apt-get install build dependencies" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends --no-upgrade "${missing[@]}"
}

# Nothing to do (exit 0) when BINARY exists and STAMP holds WANT; otherwise a build is due,
# which needs root. WHAT names the build in messages.
exit_if_built() {
  local binary=$1 stamp=$2 want=$3 what=$4
  if [[ -x "$binary" && "$(cat "$stamp" 2>/dev/null)" == "$want" ]]; then
    step "$what present in $PREFIX with the same modules (cached, nothing rebuilt)"
    exit 0
  fi
  [[ $(id -u) -eq 0 ]] || { echo "make setup: building $what needs root" >&2; exit 1; }
}
