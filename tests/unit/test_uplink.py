"""Active-backup choice (pure) and the link lines it reads."""

from __future__ import annotations

from pbxctl.services.uplink import choose, parse_link_line


def test_primary_wins_whenever_it_has_carrier() -> None:
    ports = ["etha", "ethb"]
    assert choose(ports, {"etha": True, "ethb": True}, "ethb") == "etha"  # failback
    assert choose(ports, {"etha": False, "ethb": True}, "etha") == "ethb"  # failover


def test_with_no_link_up_the_current_port_is_kept() -> None:
    assert choose(["etha", "ethb"], {"etha": False, "ethb": False}, "ethb") == "ethb"
    assert choose(["etha", "ethb"], {}, None) is None


def test_link_lines_carrier_comes_from_lower_up_not_admin_up() -> None:
    up = ("4: ethb@if9: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue master br0 "
          "state UP mode DEFAULT group default qlen 1000")
    down = ("3: etha@if8: <NO-CARRIER,BROADCAST,MULTICAST,UP> mtu 1500 master br0 state DOWN")
    assert parse_link_line(up) == ("ethb", True)
    assert parse_link_line(down) == ("etha", False)
    assert parse_link_line("Deleted 3: etha: <BROADCAST> mtu 1500") is None
    assert parse_link_line("    link/ether 96:af:84:79:41:ac brd ff:ff:ff:ff:ff:ff") is None
