"""A lab network made of Linux network namespaces: real links that can be cut.

One namespace per node (a PBX site, a PSTN gateway, phones) and one for the switches; each
switch is a bridge there, and the two switches are joined by an inter-switch link (a
hot-standby pair is stacked). A node gets one veth link per switch, both enslaved to the
node's own bridge ``br0`` which holds all its addresses (its switch-A and switch-B ones),
with an on-link route for every network, so nodes on different subnets reach each other
without a router (the patent's flat dual-switch LAN). ``pbxctl uplink`` in the node keeps
exactly one of its links forwarding (active-backup, see pbxctl/uplink.py); until it runs the
backup link is blocked. Cutting a node's link to a switch = setting the switch-side end
down: the node sees carrier loss, like a pulled cable or a dead switch port.
Everything is named ``pbx<tag>-…``; ``teardown()`` deletes every namespace it created (their
veths go with them). Needs root and iproute2.
"""

from __future__ import annotations

import contextlib
import subprocess
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from pbxctl.core.errors import CommandFailed
from pbxctl.services.uplink import ACTIVE_FLAGS, BACKUP_FLAGS


def _run(tool: str, *args: str) -> None:
    res = subprocess.run([tool, *args], capture_output=True, text=True, timeout=15,
                         check=False)
    if res.returncode != 0:
        raise CommandFailed(f"{tool} {' '.join(args)}: {res.stderr.strip() or res.returncode}")


def _ip(*args: str) -> None:
    _run("ip", *args)


def _bridge(*args: str) -> None:
    _run("bridge", *args)


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

    def veth(self, node: str, switch: str) -> str:
        """The switch-side end of ``node``'s link to ``switch`` (what a cut sets down)."""
        # Interface names are at most 15 characters: a short index keeps them unique.
        return f"v{list(self.nodes).index(node)}{switch}"

    def _add_ns(self, name: str) -> None:
        _ip("netns", "add", name)
        self._created.append(name)
        _ip("-n", name, "link", "set", "lo", "up")
        # No IPv6: link-local chatter sent straight out of a backup link would teach the
        # switches a wrong port for the server.
        for key in ("all", "default"):
            _run("ip", "netns", "exec", name, "sysctl", "-qw",
                 f"net.ipv6.conf.{key}.disable_ipv6=1")

    def add_switch(self, name: str, networks: list[IPv4Network]) -> None:
        if not self._created:
            self._add_ns(self.sw_ns)
        _ip("-n", self.sw_ns, "link", "add", f"br{name}", "type", "bridge")
        _ip("-n", self.sw_ns, "link", "set", f"br{name}", "up")
        for other in self.switches:  # the inter-switch link
            _ip("-n", self.sw_ns, "link", "add", f"isl{other}{name}", "type", "veth", "peer",
                "name", f"isl{name}{other}")
            for a, b in ((other, name), (name, other)):
                _ip("-n", self.sw_ns, "link", "set", f"isl{a}{b}", "master", f"br{a}")
                _ip("-n", self.sw_ns, "link", "set", f"isl{a}{b}", "up")
        self.switches[name] = list(networks)

    @property
    def networks(self) -> list[IPv4Network]:
        return sorted({n for nets in self.switches.values() for n in nets})

    def add_node(self, node: str, links: dict[str, list[IPv4Address]]) -> str:
        """``links``: switch name → this node's addresses on it. Returns the namespace."""
        ns = self.ns(node)
        self.nodes[node] = {sw: addrs[0] for sw, addrs in links.items()}
        self._add_ns(ns)
        _ip("-n", ns, "link", "add", "br0", "type", "bridge")
        # The addresses sit on "host", whose peer is a port of br0: frames the node sends
        # then enter the bridge like any other port's and obey the backup port's flood
        # flags (frames the bridge device itself originates are flooded everywhere).
        _ip("-n", ns, "link", "add", "host", "type", "veth", "peer", "name", "hostp")
        _ip("-n", ns, "link", "set", "hostp", "master", "br0")
        for i, sw in enumerate(links):
            outer = self.veth(node, sw)
            _ip("link", "add", outer, "netns", self.sw_ns, "type", "veth", "peer", "name",
                f"eth{sw}", "netns", ns)
            _ip("-n", self.sw_ns, "link", "set", outer, "master", f"br{sw}")
            _ip("-n", self.sw_ns, "link", "set", outer, "up")
            _ip("-n", ns, "link", "set", f"eth{sw}", "master", "br0")
            # Isolated: br0 never forwards between the switches. Until the uplink keeper
            # runs, the first link is active and the others are backups (see uplink.py).
            _bridge("-n", ns, "link", "set", "dev", f"eth{sw}", "isolated", "on",
                    *(BACKUP_FLAGS if i else ACTIVE_FLAGS))
            _ip("-n", ns, "link", "set", f"eth{sw}", "up")
        for dev in ("hostp", "br0", "host"):
            _ip("-n", ns, "link", "set", dev, "up")
        own = set()
        for addrs in links.values():
            for addr in addrs:
                net = next(n for n in self.networks if addr in n)
                own.add(net)
                _ip("-n", ns, "addr", "add", f"{addr}/{net.prefixlen}", "dev", "host")
        for net in self.networks:
            if net not in own:
                _ip("-n", ns, "route", "add", str(net), "dev", "host")
        return ns

    def uplink_argv(self, node: str, python: str) -> list[str]:
        """The active-backup keeper for this node's two links, run inside its namespace."""
        return [*ns_exec(self.ns(node)), python, "-m", "pbxctl", "uplink", "run",
                "--ports", ",".join(f"eth{sw}" for sw in self.nodes[node])]

    def set_link(self, node: str, switch: str, *, up: bool) -> None:
        _ip("-n", self.sw_ns, "link", "set", self.veth(node, switch), "up" if up else "down")

    def teardown(self) -> None:
        for name in reversed(self._created):
            with contextlib.suppress(CommandFailed):
                _ip("netns", "del", name)
        self._created.clear()


def ns_exec(ns: str) -> list[str]:
    """The argv prefix that runs a program inside namespace ``ns``. nsenter execs it in place
    (`ip netns exec` forks and waits): the PID recorded is the program's own, and no idle
    wrapper per daemon (≈ 2.6 MB each, 46 of them in a whole-province lab)."""
    return ["nsenter", f"--net=/run/netns/{ns}", "--"]


def lab_namespaces(tag: str) -> list[str]:
    """Namespaces a lab with this tag left behind (for `lab down` and tests)."""
    res = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10,
                         check=False)
    return [line.split()[0] for line in res.stdout.splitlines()
            if line.startswith(f"pbx{tag}-")]
