"""Prefecture and county lists from the inventory and, once each, the files it includes: only
regular files below the inventory's folder, at most ``MAX_INCLUDES`` files and
``MAX_TREE_BYTES`` in all — each refusal with the include's file:line."""

from __future__ import annotations

from pathlib import Path

from pbxctl.core.errors import InputError
from pbxctl.core.yamlsrc import LocDict, load_yaml
from provisioning.checks import Checker

LISTS = ("prefectures", "counties")


MAX_INCLUDES = 200
MAX_TREE_BYTES = 32 * 1024 * 1024


def collect(c: Checker, path: Path, seen: set[Path],
             out: dict[str, list[tuple[LocDict, str]]], root: LocDict, *,
             base: Path, budget: list[int]) -> None:
    """Prefecture and county items from ``root`` and, once each, its includes (relative to
    the including file)."""
    for key in LISTS:
        items = c.seq(root, key, key, required=False)
        for i, item in enumerate(items):
            if isinstance(item, LocDict):
                out[key].append((item, f"{key}[{len(out[key])}]"))
            else:
                c.err(items.loc_of(i), f"{key}[{i}]", "must be a mapping")
    includes = c.seq(root, "include", "include", required=False)
    for i, inc in enumerate(includes):
        if not isinstance(inc, str):
            c.err(includes.loc_of(i), f"include[{i}]", "must be a file name")
            continue
        target = (path.parent / inc).resolve()
        if not target.is_relative_to(base):
            c.err(includes.loc_of(i), f"include[{i}]",
                  f"{inc} is outside the inventory's folder {base} (symlinks included)")
            continue
        if target in seen:
            c.err(includes.loc_of(i), f"include[{i}]", f"{inc} is included twice (or in a cycle)")
            continue
        seen.add(target)
        try:
            if len(seen) > MAX_INCLUDES:
                raise InputError(f"more than {MAX_INCLUDES} files in the include tree")
            budget[0] -= target.stat().st_size if target.is_file() else 0
            if budget[0] < 0:
                raise InputError(f"the include tree is larger than {MAX_TREE_BYTES // 2**20} "
                                 "MB in total")
            sub = load_yaml(target)
        except InputError as exc:
            c.problems.append(f"{includes.loc_of(i)}: include[{i}]: {exc.message}")
            continue
        c.unknown_keys(sub, {"prefectures", "counties", "include"}, str(target.name))
        collect(c, target, seen, out, sub, base=base, budget=budget)
