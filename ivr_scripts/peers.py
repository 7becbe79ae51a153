"""Who may talk to the CTI: the PBXs of the inventory (province PBX, gateways, LSSs, on both
paths) plus configured extras; without an inventory, loopback only.

A peer is checked on accept, before a byte is read; one that is not allowed is closed and
counted, and logged once per peer per minute (not once per attempt: a scan must not flood the
log). A session's ``site=`` parameter must name a site that this peer's address belongs to:
an allowed PBX cannot act as another one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

from provisioning.model import Inventory

log = logging.getLogger("pbxctl.cti")

Network = IPv4Network | IPv6Network
LOOPBACK: tuple[Network, ...] = (ip_network("127.0.0.0/8"), ip_network("::1/128"))
LOG_EVERY = 60.0  # seconds between two log lines about the same refused peer


class PeerFilter:
    def __init__(self, networks: Iterable[Network], *,
                 sites: Mapping[str, frozenset[str]] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.networks = tuple(networks)
        self.sites = dict(sites or {})  # address → the site names that own it
        self.refused = 0
        self._clock = clock
        self._last_logged: dict[str, float] = {}
        self._lock = threading.Lock()

    @classmethod
    def loopback_only(cls) -> PeerFilter:
        return cls(LOOPBACK)

    @classmethod
    def from_inventory(cls, inv: Inventory, extras: Iterable[str] = ()) -> PeerFilter:
        sites: dict[str, set[str]] = {}
        for site in inv.sites():
            for addr in (site.host.a, site.host.b):
                sites.setdefault(str(addr), set()).add(site.name)
        nets = [ip_network(a) for a in sites] + [ip_network(e, strict=False) for e in extras]
        return cls(nets, sites={a: frozenset(s) for a, s in sites.items()})

    def allows(self, address: str) -> bool:
        try:
            addr = ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if addr.version == 6 and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return any(addr in net for net in self.networks)

    def refuse(self, address: str, why: str = "not an allowed peer") -> None:
        """Count a refused connection; log it at most once a minute per peer."""
        with self._lock:
            self.refused += 1
            now = self._clock()
            last = self._last_logged.get(address)
            if last is not None and now - last < LOG_EVERY:
                return
            self._last_logged[address] = now
            if len(self._last_logged) > 10000:  # a scan from many addresses: forget the oldest
                for key in sorted(self._last_logged, key=self._last_logged.__getitem__)[:5000]:
                    del self._last_logged[key]
        log.warning("refused %s: %s (counting; next line about this peer in %gs at the "
                    "earliest)", address, why, LOG_EVERY)

    def site_mismatch(self, address: str, site: str) -> str | None:
        """Why a session from ``address`` may not speak for ``site`` (None: it may). Only
        enforced where the inventory says which addresses a site has."""
        if not self.sites or not site:
            return None
        owners = self.sites.get(address.split("%", 1)[0])
        if owners is None:
            return None  # an extra (an ops host, a probe): not a PBX, names no site
        return None if site in owners else "peer-not-site"
