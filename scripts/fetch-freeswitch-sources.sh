#!/usr/bin/env bash
# The FreeSWITCH sources without ../shared: fetch the same upstream refs the vendored tarballs
# were exported from and verify each by the git tree hash of its exported content (pinned
# below; compression makes tarball digests unreproducible, a tree hash is not). Writes
# DEST/<name>.tar.xz and DEST/SHA256SUMS in the layout build-freeswitch.sh reads.
#
#   scripts/fetch-freeswitch-sources.sh DEST           fetch, verify, pack
#   scripts/fetch-freeswitch-sources.sh --check VENDOR  the pins against vendored tarballs
#
# The fetch cannot be exercised from the machines this project is built on (no route to
# GitHub); --check runs in make test against ../shared/vendor/freeswitch, so the pins are the
# hashes of exactly the sources that are built and tested here.
set -euo pipefail

# name (the tarball's top directory is the prefix) | repository | ref | tree hash
sources=(
  "sofia-sip-1.13.17|sofia-sip|https://github.com/freeswitch/sofia-sip.git|v1.13.17|0315ce3a85ff7dc1fc257e0184a4140a7604199a"
  "spandsp-0d2e6ac|spandsp|https://github.com/freeswitch/spandsp.git|0d2e6ac65e0e8f53d652665a743015a88bf048d4|5fa4eb782e678d7b36a778d2195910f78f39543e"
  "freeswitch-1.10.12|freeswitch-1.10.12|https://github.com/signalwire/freeswitch.git|v1.10.12|7caad169d57659a26d2df0a2a5b600badcbd758f"
)
# Left out of the vendored export (a 3 MB test video nothing builds): left out here too.
absent="freeswitch-1.10.12/src/mod/applications/mod_fsv/freeswitch-4k.yuv"

tree_of() {  # directory -> git tree hash of every file in it (ignored ones too), no .git left
  local dir=$1 g
  g=$(mktemp -d)
  git --git-dir="$g" init -q
  git --git-dir="$g" --work-tree="$dir" add -A -f
  git --git-dir="$g" write-tree
  rm -rf "$g"
}

if [[ ${1:-} == --check ]]; then
  vendor=${2:?usage: $0 --check VENDOR}
  bad=0
  for s in "${sources[@]}"; do
    IFS='|' read -r name top _ _ tree <<<"$s"
    tmp=$(mktemp -d)
    tar -C "$tmp" -xJf "$vendor/$name.tar.xz"
    got=$(tree_of "$tmp/$top")
    rm -rf "$tmp"
    if [[ $got == "$tree" ]]; then echo "ok $name $got"; else echo "MISMATCH $name: pinned $tree, vendored $got"; bad=1; fi
  done
  exit $bad
fi

dest=${1:?usage: $0 DEST | --check VENDOR}
mkdir -p "$dest"
for s in "${sources[@]}"; do
  IFS='|' read -r name top repo ref tree <<<"$s"
  tmp=$(mktemp -d)
  git --git-dir="$tmp/git" init -q
  git --git-dir="$tmp/git" fetch -q --depth 1 "$repo" "$ref" \
    || { echo "fetch $repo $ref failed" >&2; exit 1; }
  mkdir "$tmp/out"
  git --git-dir="$tmp/git" archive --prefix="$top/" FETCH_HEAD | tar -C "$tmp/out" -x
  rm -f "$tmp/out/$absent"
  got=$(tree_of "$tmp/out/$top")
  if [[ $got != "$tree" ]]; then
    echo "$name from $repo $ref: tree $got, pinned $tree: refusing to build it" >&2
    exit 1
  fi
  tar -C "$tmp/out" -cJf "$dest/$name.tar.xz.part" "$top"
  mv "$dest/$name.tar.xz.part" "$dest/$name.tar.xz"
  rm -rf "$tmp"
  echo "fetched $name (tree $got)"
done
(cd "$dest" && sha256sum ./*.tar.xz | sed 's| \./| |' >SHA256SUMS.part && mv SHA256SUMS.part SHA256SUMS)
