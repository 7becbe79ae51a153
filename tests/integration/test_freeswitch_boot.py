"""Every rendered site of the example province boots in a real FreeSWITCH 1.10.12 (built by
`make setup`) with no ERR or CRIT line, and holds exactly what the model says: its two SIP
profiles (one per switch) RUNNING with their gateways, its seats as directory users, its
mod_callcenter queues with their tiers — the FreeSWITCH row of the boot test
(test_provision_boot.py for Asterisk)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from pbxctl.lab.site import freeswitch_for
from pbxctl.pbx import freeswitch_show as show
from provisioning.expect import expected_freeswitch, freeswitch_differences
from provisioning.inventory import load_inventory
from provisioning.model import Inventory
from provisioning.secrets import Secrets, ensure_secrets

pytestmark = pytest.mark.freeswitch

EXAMPLE = Path(__file__).parents[2] / "examples" / "zhejiang" / "province.yaml"
EXAMPLE_SITES = [s.name for s in load_inventory(EXAMPLE).sites()]


@dataclass
class Booted:
    profiles: dict[str, set[str]]
    users: set[str]
    queues: dict[str, set[str]]
    errors: list[str]


def _boot(inv: Inventory, secrets: Secrets, name: str, root: Path) -> Booted:
    site = inv.site(name)
    fs = freeswitch_for(inv, site, secrets, root)
    fs.start(timeout=120)
    try:
        with fs.esl() as esl:
            got = Booted(show.profiles(esl.api("sofia status")),
                         show.users(esl.api("list_users")),
                         show.queues(esl.api("callcenter_config queue list"),
                                     esl.api("callcenter_config tier list"))
                         if site.role != "gateway" else {}, [])
    finally:
        fs.stop()
    got.errors = fs.log_lines("ERR") + fs.log_lines("CRIT")
    return got


@pytest.fixture(scope="module")
def example() -> Iterator[tuple[Inventory, Secrets]]:
    inv = load_inventory(EXAMPLE)
    with tempfile.TemporaryDirectory() as tmp:
        yield inv, ensure_secrets(inv, Path(tmp) / "example.secrets.yaml")


@pytest.fixture(scope="module")
def booted(example: tuple[Inventory, Secrets], tmp_path_factory: pytest.TempPathFactory
           ) -> dict[str, Booted]:
    """Every site booted, read and stopped once, several at a time: a FreeSWITCH takes ~5 s
    to start and ~4 s to stop, mostly waiting (23 in a row took 3.5 min)."""
    inv, secrets = example
    root = tmp_path_factory.mktemp("fs-boot")
    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = {n: pool.submit(_boot, inv, secrets, n, root / n) for n in EXAMPLE_SITES}
        return {n: f.result() for n, f in futures.items()}


@pytest.mark.parametrize("name", EXAMPLE_SITES)
def test_rendered_site_boots_clean_with_exactly_the_model(
        example: tuple[Inventory, Secrets], booted: dict[str, Booted], name: str) -> None:
    inv, _ = example
    site = inv.site(name)
    got = booted[name]
    got_p, got_u, got_q = got.profiles, got.users, got.queues
    assert got.errors == []
    want = expected_freeswitch(inv, site)
    assert freeswitch_differences(want, profiles=got_p, users=got_u, queues=got_q) == []
    # Count-checked as well, so an empty parse can never pass.
    assert sum(len(g) for g in got_p.values()) == sum(len(g) for g in want.profiles.values()) > 0
    assert len(got_u) == len(want.users)
    assert sum(len(a) for a in got_q.values()) == sum(len(a) for a in want.queues.values())
