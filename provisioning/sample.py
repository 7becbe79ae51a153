"""Sample self-service data for an inventory (accounts per county, bills, outages)."""

from __future__ import annotations

from typing import Any

from provisioning.model import Inventory


def seed_input(inv: Inventory) -> list[dict[str, Any]]:
    return [{"code": p.code, "index": i,
             "counties": [{"code": c.code, "name": c.name} for c in inv.counties_of(p.code)]
             or [{"code": p.code, "name": p.name}]}
            for i, p in enumerate(inv.prefectures, start=1)]
