"""The namespace lab's copy of an inventory: loopback addresses moved to 10/8 (they cannot
leave `lo`), business hours dropped only when asked."""

from __future__ import annotations

from pathlib import Path

from pbxctl.lab.netlab import copy_inventory, drop_business_hours
from provisioning.inventory import load_inventory

SMALL = Path(__file__).parents[1] / "data" / "small"


def test_the_copy_uses_private_addresses_and_still_validates(tmp_path: Path) -> None:
    path = copy_inventory(SMALL / "province.yaml", tmp_path / "inv")
    inv = load_inventory(path)
    assert str(inv.province.pbx.a) == "10.201.1.10"
    assert str(inv.prefecture("HZ").gateway.b) == "10.211.2.10"
    assert inv.prefecture("HZ").hours.close == "20:00"
    assert "127." not in path.read_text().split("counties")[0].replace("# ", "")


def test_always_open_drops_flow_and_block_business_hours() -> None:
    text = ("a:\n  business_hours: {days: [mon], open: \"08:00\", close: \"20:00\"}\n"
            "  name: x\n  business_hours:\n    days: [mon]\n    open: \"08:00\"\n"
            "  after: y\n")
    assert drop_business_hours(text) == "a:\n  name: x\n  after: y\n"


def test_always_open_copy_validates_without_hours(tmp_path: Path) -> None:
    inv = load_inventory(copy_inventory(SMALL / "province.yaml", tmp_path / "inv",
                                        always_open=True))
    always = ("00:00", "24:00", 7)
    assert all((p.hours.open, p.hours.close, len(p.hours.days)) == always
               for p in inv.prefectures)
