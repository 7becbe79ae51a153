"""The lab's life: `lab up` (the whole province in network namespaces, netlab.py), `lab down`,
`lab status`. Everything the lab starts is recorded by PID in ``<lab dir>/lab.json`` (0600: it
holds the sandboxes' AMI secrets) so ``lab down`` stops exactly that.

There is one lab: the province an inventory describes, deployed the way an operator deploys
it. Without ``--inventory`` it is the shipped example province, two prefectures.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pbxctl.core.errors import LabStateError, UsageError
from pbxctl.core.files import atomic_write
from pbxctl.core.procs import pid_alive
from pbxctl.core.redact import redacted

DEFAULT_LAB_DIR = "/tmp/pbxctl-lab"
EXAMPLE = Path("examples") / "zhejiang" / "province.yaml"
DEFAULT_PREFECTURES = ["HZ", "NB"]  # without --inventory: two prefectures of the example

Progress = Callable[[str], None]


@dataclass
class LabState:
    root: str
    netns: dict[str, Any] = field(default_factory=dict)  # the province (netlab.NetState)

    @property
    def path(self) -> Path:
        return Path(self.root) / "lab.json"

    def save(self) -> None:
        atomic_write(self.path, json.dumps(asdict(self), indent=2, sort_keys=True), mode=0o600)

    @classmethod
    def load(cls, root: Path) -> LabState | None:
        try:
            data = json.loads((root / "lab.json").read_text())
        except FileNotFoundError:
            return None
        return cls(root=data["root"], netns=data.get("netns", {}))

    def pids(self) -> list[int]:
        """Every process the lab recorded (also from a state saved half-way up)."""
        n = self.netns
        procs = [n.get("cti", {}), n.get("pg", {})]
        for group in ("sites", "uplinks", "watchers", "services", "phones"):
            procs += list(n.get(group, {}).values())
        return [int(p["pid"]) for p in procs if p.get("pid")]


def example_inventory() -> Path:
    """The shipped example province: beside the sources, or where the package installed it."""
    import sys

    for base in (Path(__file__).resolve().parents[2], Path(sys.prefix) / "share" / "pbxctl",
                 Path("/usr/share/pbxctl"), Path("/usr/local/share/pbxctl")):
        if (base / EXAMPLE).is_file():
            return base / EXAMPLE
    raise UsageError("the example province is not installed here",
                     hint="pass --inventory PROVINCE.yaml")


def lab_dir(environ: dict[str, str]) -> Path:
    return Path(environ.get("PBXCTL_LAB_DIR", DEFAULT_LAB_DIR))


def lab_up(root: Path, *, progress: Progress, asterisk_bin: str | None = None,
           major: int | None = None, inventory: Path | None = None,
           prefectures: list[str] | None = None, hold_down: float | None = None,
           always_open: bool = False) -> LabState:
    """The province in network namespaces (see netlab.py); on any failure, what was started
    is stopped again (files kept for inspection) before the error is raised."""
    existing = LabState.load(root)
    if existing is not None:
        if any(pid_alive(p) for p in existing.pids()):
            raise LabStateError(f"a lab is already up in {root}",
                                hint="run `pbxctl lab down` first")
        shutil.rmtree(root, ignore_errors=True)
    if inventory is None:
        inventory = example_inventory()
        prefectures = prefectures or DEFAULT_PREFECTURES
    if prefectures == ["all"]:  # every prefecture of the inventory
        prefectures = None
    root.mkdir(parents=True, exist_ok=True)
    state = LabState(root=str(root))
    state.save()
    try:
        from pbxctl.lab.netlab import netlab_up
        box: dict[str, Any] = {}

        def save() -> None:
            state.netns = box.get("netns", {})
            state.save()

        netlab_up(root, inventory, progress=progress, save=save, state_box=box,
                  prefectures=prefectures, major=major, hold_down=hold_down,
                  always_open=always_open, asterisk_bin=asterisk_bin)
    except BaseException:
        progress("start-up failed: stopping what was started (files kept for inspection)")
        try:
            lab_down(root, progress=progress, keep_files=True)
        except LabStateError as cleanup:  # never mask the error that made us stop
            progress(f"cleanup: {cleanup}")
        raise
    return state


def lab_down(root: Path, *, progress: Progress, keep_files: bool = False) -> list[int]:
    """Stop everything the lab recorded, by PID; returns the PIDs that were stopped."""
    state = LabState.load(root)
    if state is None:
        raise LabStateError(f"no lab in {root}", hint="nothing to stop")
    stopped: list[int] = []
    if state.netns:
        from pbxctl.lab.netlab import netlab_down
        stopped += netlab_down(state.netns, progress=progress)
    leftover = [p for p in state.pids() if pid_alive(p)]
    if leftover:
        raise LabStateError(f"processes still alive after lab down: {leftover}")
    if not keep_files:
        shutil.rmtree(root, ignore_errors=True)
    return stopped


def lab_status(root: Path) -> dict[str, Any]:
    state = LabState.load(root)
    if state is None:
        return {"up": False, "root": str(root)}
    data: dict[str, Any] = redacted(asdict(state))
    data["up"] = True
    data["alive"] = {str(p): pid_alive(p) for p in state.pids()}
    return data

