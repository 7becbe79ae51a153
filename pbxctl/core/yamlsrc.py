"""YAML that remembers where each value came from, so errors can name file and line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pbxctl.core.errors import InputError


@dataclass(frozen=True)
class Loc:
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class LocDict(dict[str, Any]):
    """A mapping whose keys and values know their source line."""

    loc: Loc
    key_locs: dict[str, Loc]

    def loc_of(self, key: str) -> Loc:
        return self.key_locs.get(key, self.loc)


class LocList(list[Any]):
    loc: Loc
    item_locs: list[Loc]

    def loc_of(self, index: int) -> Loc:
        return self.item_locs[index] if index < len(self.item_locs) else self.loc


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


MAX_FILE_BYTES = 4 * 1024 * 1024  # one YAML file; the example province is ~20 kB
MAX_DEPTH = 32  # nesting of mappings and lists; an inventory needs 6


class _Walk:
    """What one file's build has seen: every collection node once (an alias would make the
    same node appear again — a 381-byte alias bomb expands to gigabytes), and the depth."""

    def __init__(self) -> None:
        self.seen: set[int] = set()


def _build(node: yaml.Node, file: str, loader: Any, walk: _Walk | None = None,
           depth: int = 0) -> Any:
    loc = Loc(file, node.start_mark.line + 1)
    walk = walk or _Walk()
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
        if id(node) in walk.seen:
            raise InputError(f"{loc}: YAML anchors and aliases (&name / *name, <<) are not "
                             "accepted: write the value out")
        walk.seen.add(id(node))
        if depth >= MAX_DEPTH:
            raise InputError(f"{loc}: nested deeper than {MAX_DEPTH} levels")
    if isinstance(node, yaml.MappingNode):
        out = LocDict()
        out.loc, out.key_locs = loc, {}
        for key_node, value_node in node.value:
            key = _build(key_node, file, loader, walk, depth + 1)
            if not isinstance(key, str):
                key = str(key)
            if key in out:
                where = Loc(file, key_node.start_mark.line + 1)
                raise InputError(f"{where}: duplicate key {key!r}")
            out[key] = _build(value_node, file, loader, walk, depth + 1)
            out.key_locs[key] = Loc(file, key_node.start_mark.line + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        seq = LocList(_build(item, file, loader, walk, depth + 1) for item in node.value)
        seq.loc = loc
        seq.item_locs = [Loc(file, item.start_mark.line + 1) for item in node.value]
        return seq
    assert isinstance(node, yaml.ScalarNode)
    # Scalars keep YAML's own typing (int, bool, str); the validator decides what it accepts.
    return loader.construct_object(node, deep=True)


def load_yaml(path: Path, *, max_bytes: int = MAX_FILE_BYTES) -> LocDict:
    """A regular file of at most ``max_bytes`` (no /dev/zero, no FIFO), no aliases, bounded
    nesting; every refusal names the file (and line)."""
    try:
        if not path.is_file():
            raise InputError(f"{path}: not a regular file" if path.exists()
                             else f"{path}: file not found")
        with path.open("rb") as fh:
            raw = fh.read(max_bytes + 1)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    if len(raw) > max_bytes:
        raise InputError(f"{path}: larger than {max_bytes // 1024} kB: not an inventory")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise InputError(f"{path}:1: empty file")
        data = _build(node, str(path), loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else 0
        raise InputError(f"{path}:{line}: YAML syntax error: {exc.problem}") from None
    finally:
        loader.dispose()
    if not isinstance(data, LocDict):
        raise InputError(f"{path}:1: top level must be a mapping")
    return data
