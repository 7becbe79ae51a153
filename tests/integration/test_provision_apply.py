"""`apply` on a running sandboxed Asterisk: reload without restart; a broken change is rolled
back and reported."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from pbxctl.cli import main
from pbxctl.core.errors import CommandFailed
from pbxctl.ops.deploy import PREV_DIR, apply_site
from pbxctl.pbx.asterisk_show import queues
from provisioning.expect import expected
from provisioning.inventory import load_inventory
from provisioning.render_asterisk import RenderedFile, render_site
from provisioning.secrets import ensure_secrets, secrets_path
from tests.conftest import SiteFactory, management_ami

pytestmark = pytest.mark.asterisk


def _drop_agent(inventory: Path) -> None:
    text = inventory.read_text(encoding="utf-8")
    line = '      - {id: hz-a002, name: 李强, extension: "1102"}\n'
    assert line in text
    inventory.write_text(text.replace(line, ""), encoding="utf-8")


def test_apply_changes_a_queue_member_without_restart(
        small_inventory_path: Path, site_factory: SiteFactory, short_tmp: Path) -> None:
    inv = load_inventory(small_inventory_path)
    secrets = ensure_secrets(inv, secrets_path(small_inventory_path), create=False)
    ast = site_factory(inv, secrets, "zj-pbx")  # root: short_tmp/zj-pbx, configs in etc/
    pid = ast.pid
    assert "PJSIP/hz-a002" in queues(ast.cli("queue show"))["acd-HZ"]
    old_queues = (ast.etc / "queues.conf").read_text()

    _drop_agent(small_inventory_path)
    out, err = io.StringIO(), io.StringIO()
    code = main(["provision", "apply", str(small_inventory_path), "--site", "zj-pbx",
                 "--target", str(short_tmp), "--ami-source", str(inv.province.cti.a)],
                environ={}, stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    assert "reloaded with module reload res_pjsip.so; module reload app_queue.so; dialplan " \
           "reload" in out.getvalue()
    assert queues(ast.cli("queue show"))["acd-HZ"] == {"PJSIP/hz-a001"}
    assert "hz-a002" not in ast.cli("pjsip show endpoints")
    assert ast.pid == pid  # reloaded, not restarted
    assert (ast.etc / PREV_DIR / "queues.conf").read_text() == old_queues
    again = io.StringIO()
    assert main(["provision", "apply", str(small_inventory_path), "--site", "zj-pbx",
                 "--target", str(short_tmp), "--ami-source", str(inv.province.cti.a)],
                environ={}, stdout=again, stderr=err) == 0
    assert "zj-pbx: up to date" in again.getvalue()


def test_broken_change_is_rolled_back_and_reported(
        small_inventory_path: Path, site_factory: SiteFactory, short_tmp: Path) -> None:
    inv = load_inventory(small_inventory_path)
    secrets = ensure_secrets(inv, secrets_path(small_inventory_path), create=False)
    ast = site_factory(inv, secrets, "zj-pbx")
    before = {p.name: p.read_text() for p in ast.etc.glob("*.conf")}
    members_before = queues(ast.cli("queue show"))

    _drop_agent(small_inventory_path)
    new_inv = load_inventory(small_inventory_path)
    site = new_inv.site("zj-pbx")
    files = dict(render_site(new_inv, site, secrets))
    # A file Asterisk refuses (an unterminated section header): app_queue keeps the old
    # queues and still says "reloaded successfully".
    files["queues.conf"] = RenderedFile("queues.conf", "[acd-HZ\n" + files["queues.conf"].text)
    client = management_ami(ast, str(inv.province.cti.a))
    try:
        with pytest.raises(CommandFailed) as exc:
            apply_site(site="zj-pbx", root=ast.root, files=files,
                       run=lambda cmd: "\n".join(client.command(cmd)),
                       want=expected(new_inv, site))
    finally:
        client.close()
    assert "rolled back" in exc.value.message
    assert "queues.conf is in an invalid format" in exc.value.detail
    assert {p.name: p.read_text() for p in ast.etc.glob("*.conf")} == before
    assert queues(ast.cli("queue show")) == members_before
