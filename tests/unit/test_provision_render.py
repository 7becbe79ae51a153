"""Renderers: golden files per role, determinism, and what each site contains."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioning.inventory import load_inventory
from provisioning.render_asterisk import render_all
from provisioning.secrets import ensure_secrets, secrets_path
from tests.golden_files import assert_golden

GOLDEN = Path(__file__).parents[1] / "golden" / "asterisk"
ROLES = ("zj-pbx", "hz-gw", "hz-lss")  # province, gateway, survivable server


def _render(inventory: Path) -> dict[str, dict[str, str]]:
    inv = load_inventory(inventory)
    secrets = ensure_secrets(inv, secrets_path(inventory), create=False)
    return {site: {n: f.text for n, f in files.items()}
            for site, files in render_all(inv, secrets).items()}


@pytest.mark.golden
@pytest.mark.parametrize("site", ROLES)
def test_golden_files(small_inventory_path: Path, site: str) -> None:
    files = _render(small_inventory_path)[site]
    assert_golden(GOLDEN / site, files)


def test_render_is_deterministic(small_inventory_path: Path) -> None:
    assert _render(small_inventory_path) == _render(small_inventory_path)


def test_every_site_gets_the_same_file_set(small_inventory_path: Path) -> None:
    out = _render(small_inventory_path)
    assert set(out) == {"zj-pbx", "hz-gw", "hz-lss", "nb-gw", "nb-lss"}
    names = {"pjsip.conf", "extensions.conf", "queues.conf", "manager.conf", "modules.conf",
             "rtp.conf", "musiconhold.conf", "logger.conf", "asterisk.conf"}
    assert all(set(files) == names for files in out.values())


def test_trunks_exist_on_both_paths_with_qualify(small_inventory_path: Path) -> None:
    gw = _render(small_inventory_path)["hz-gw"]["pjsip.conf"]
    for trunk, remote in (("province-a", "127.201.1.10"), ("province-b", "127.201.2.10"),
                          ("lss-a", "127.211.1.11"), ("lss-b", "127.211.2.11")):
        assert f"[{trunk}]\ntype = aor\ncontact = sip:{remote}:5060\nqualify_frequency = 1" in gw
    assert "bind = 127.211.1.10:5060" in gw and "bind = 127.211.2.10:5060" in gw


def test_secrets_are_referenced_not_in_inventory(small_inventory_path: Path) -> None:
    assert "test-sip" not in small_inventory_path.read_text()
    lss = _render(small_inventory_path)["hz-lss"]
    assert "password = test-sip-hz-a001" in lss["pjsip.conf"]
    assert "secret = test-ami-hz-lss" in lss["manager.conf"]


def test_secrets_generated_once_with_mode_0600(tmp_path: Path, small_inventory_path: Path
                                               ) -> None:
    inv = load_inventory(small_inventory_path)
    path = tmp_path / "new.secrets.yaml"
    first = ensure_secrets(inv, path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert ensure_secrets(inv, path) == first  # not regenerated
    assert len(set(first.sip.values())) == len(first.sip)


def test_world_readable_secrets_refused(small_inventory_path: Path) -> None:
    from pbxctl.core.errors import InputError

    path = secrets_path(small_inventory_path)
    path.chmod(0o644)
    with pytest.raises(InputError, match="chmod 600"):
        ensure_secrets(load_inventory(small_inventory_path), path)
