"""Every rendered site of examples/ boots in a real Asterisk — 22 (the default) and 16 (the
compatibility target), each with configs rendered for it — with no ERROR line, and holds
exactly the endpoints, dialplan and queues the model says."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pbxctl.pbx.asterisk_modules import SUPPORTED
from pbxctl.pbx.asterisk_show import dialplan, endpoints, queues
from provisioning.expect import differences, expected
from provisioning.inventory import load_inventory
from provisioning.model import Inventory
from provisioning.secrets import Secrets, ensure_secrets
from tests.conftest import SiteFactory

pytestmark = pytest.mark.asterisk

EXAMPLE = Path(__file__).parents[2] / "examples" / "zhejiang" / "province.yaml"
EXAMPLE_SITES = [s.name for s in load_inventory(EXAMPLE).sites()]


@pytest.fixture(scope="module")
def example() -> Iterator[tuple[Inventory, Secrets]]:
    inv = load_inventory(EXAMPLE)
    with tempfile.TemporaryDirectory() as tmp:
        yield inv, ensure_secrets(inv, Path(tmp) / "example.secrets.yaml")


def test_example_has_all_roles() -> None:
    assert len(EXAMPLE_SITES) == 23  # 1 province + 11 gateways + 11 survivable servers


@pytest.mark.parametrize("major", SUPPORTED)
@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_rendered_site_boots_clean_with_exactly_the_model(
        example: tuple[Inventory, Secrets], site_factory: SiteFactory, site: str,
        major: int) -> None:
    inv, secrets = example
    ast = site_factory(inv, secrets, site, major=major)
    assert ast.error_lines() == []
    assert ast.version().split(".")[0] == str(major)  # the engine asked for, not another
    want = expected(inv, inv.site(site))
    got_eps = endpoints(ast.cli("pjsip show endpoints"))
    got_dp = dialplan(ast.cli("dialplan show"))
    got_q = queues(ast.cli("queue show"))
    assert differences(want, got_eps, got_dp, got_q) == []
    # Count-checked as well, so an empty parse can never pass.
    assert len(got_eps) == len(want.endpoints) > 0
    assert sum(len(v) for v in got_q.values()) == sum(len(v) for v in want.queues.values())
