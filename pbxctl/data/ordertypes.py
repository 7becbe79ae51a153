"""The work-order types (a leaf module: the inventory loader and the CLI's argument parser
need the names without loading the database driver)."""

from __future__ import annotations

ORDER_TYPES = ("repair", "billing", "outage", "meter", "other")
