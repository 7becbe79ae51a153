"""A lab network made of Linux network namespaces: real links that can be cut.

One namespace per node (a PBX site, a PSTN gateway, phones) and one for the switches; each
switch is a bridge there. A node gets one veth link per switch it sits on; its address on
that link, plus an on-link route for every network of that switch, so nodes on different
subnets of one switch reach each other without a router (as the patent's flat dual-switch
LAN does). Cutting a node's link to a switch = setting the switch-side end down: the node's
own interface stays up, exactly like a pulled cable or a dead switch port.
Everything is named ``pbx<tag>-…``; ``teardown()`` deletes every namespace it created (their
veths go with them). Needs root and iproute2.
"""

from __future__ import annotations

import contextlib
import subprocess
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from ..errors import CommandFailed


def _ip(*args: str) -> None:
    res = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=15,
                         check=False)
    if res.returncode != 0:
        raise CommandFailed(f"ip {' '.join(args)}: {res.stderr.strip() or res.returncode}")


@dataclass
class NetLab:
    tag: str
    switches: dict[str, list[IPv4Network]] = field(default_factory=dict)
    nodes: dict[str, dict[str, IPv4Address]] = field(default_factory=dict)
    _created: list[str] = field(default_factory=list)

    @property
    def sw_ns(self) -> str:
        return f"pbx{self.tag}-sw"

    def ns(self, node: str) -> str:
        return f"pbx{self.tag}-{node}"

    def _veth(self, node: str, switch: str) -> str:
        # Interface names are at most 15 characters: a short index keeps them unique.
        return f"v{list(self.nodes).index(node)}{switch}"

    def _add_ns(self, name: str) -> None:
        _ip("netns", "add", name)
        self._created.append(name)
        _ip("-n", name, "link", "set", "lo", "up")

    def add_switch(self, name: str, networks: list[IPv4Network]) -> None:
        if not self._created:
            self._add_ns(self.sw_ns)
        _ip("-n", self.sw_ns, "link", "add", f"br{name}", "type", "bridge")
        _ip("-n", self.sw_ns, "link", "set", f"br{name}", "up")
        self.switches[name] = list(networks)

    def add_node(self, node: str, links: dict[str, list[IPv4Address]]) -> str:
        """``links``: switch name → this node's addresses on it. Returns the namespace."""
        ns = self.ns(node)
        self.nodes[node] = {sw: addrs[0] for sw, addrs in links.items()}
        self._add_ns(ns)
        for sw, addrs in links.items():
            outer = self._veth(node, sw)
            _ip("link", "add", outer, "netns", self.sw_ns, "type", "veth", "peer", "name",
                f"eth{sw}", "netns", ns)
            _ip("-n", self.sw_ns, "link", "set", outer, "master", f"br{sw}")
            _ip("-n", self.sw_ns, "link", "set", outer, "up")
            for addr in addrs:
                net = next(n for n in self.switches[sw] if addr in n)
                _ip("-n", ns, "addr", "add", f"{addr}/{net.prefixlen}", "dev", f"eth{sw}")
            _ip("-n", ns, "link", "set", f"eth{sw}", "up")
            own = {next(n for n in self.switches[sw] if a in n) for a in addrs}
            for net in self.switches[sw]:
                if net not in own:
                    _ip("-n", ns, "route", "add", str(net), "dev", f"eth{sw}")
        return ns

    def set_link(self, node: str, switch: str, *, up: bool) -> None:
        _ip("-n", self.sw_ns, "link", "set", self._veth(node, switch), "up" if up else "down")

    def teardown(self) -> None:
        for name in reversed(self._created):
            with contextlib.suppress(CommandFailed):
                _ip("netns", "del", name)
        self._created.clear()


def lab_namespaces(tag: str) -> list[str]:
    """Namespaces a lab with this tag left behind (for `lab down` and tests)."""
    res = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10,
                         check=False)
    return [line.split()[0] for line in res.stdout.splitlines()
            if line.startswith(f"pbx{tag}-")]
