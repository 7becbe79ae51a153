"""Secrets live beside the inventory, never in it: generated once, mode 0600, referenced by name."""

from __future__ import annotations

import os
import secrets as _random
import stat
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pbxctl.core.errors import InputError
from pbxctl.core.files import atomic_write
from provisioning.model import Inventory


@dataclass(frozen=True)
class Secrets:
    path: str
    ami: dict[str, str]  # site name → AMI secret of its operations user (pbxctl)
    sip: dict[str, str]  # seat id → SIP digest password
    dsn: dict[str, str]  # secret name → PostgreSQL conninfo (written by ops)
    ami_watch: dict[str, str] = field(default_factory=dict)  # gateway → pbxctl-watch secret
    ami_notify: dict[str, str] = field(default_factory=dict)  # province PBX → pbxctl-notify
    ami_console: dict[str, str] = field(default_factory=dict)  # province PBX → pbxctl-console

SECTIONS = ("ami", "ami_watch", "ami_notify", "ami_console", "sip", "dsn")
# The per-purpose AMI users a site of each role has besides the operations user.
ROLE_USERS = {"gateway": ("ami_watch",), "province": ("ami_notify", "ami_console")}


def secrets_path(inventory: Path) -> Path:
    return inventory.with_name(inventory.stem + ".secrets.yaml")


def _load(path: Path) -> dict[str, dict[str, str]]:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise InputError(f"{path}: secrets file is mode {oct(mode)}, readable by others",
                         hint=f"chmod 600 {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML: {exc}") from None
    out: dict[str, dict[str, str]] = {}
    for section in SECTIONS:
        values = data.get(section) or {}
        if not isinstance(values, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in values.items()):
            raise InputError(f"{path}: {section}: must map names to strings")
        for key, value in values.items():
            if any(ch in value for ch in "\r\n;[]\"") or not value:
                raise InputError(f"{path}: {section}.{key}: empty or unsafe characters")
        out[section] = dict(values)
    return out


def ensure_secrets(inv: Inventory, path: Path, *, create: bool = True) -> Secrets:
    """Load the secrets file, generating any missing AMI/SIP secret (then rewriting it, 0600)."""
    data = _load(path) if path.exists() else {s: {} for s in SECTIONS}
    changed = not path.exists()
    for site in inv.sites():
        for section in ("ami", *ROLE_USERS.get(site.role, ())):
            if site.name not in data[section]:
                data[section][site.name] = _random.token_hex(16)
                changed = True
    for seat in inv.all_seats():
        if seat.id not in data["sip"]:
            data["sip"][seat.id] = _random.token_urlsafe(18)
            changed = True
    if changed:
        if not create:
            raise InputError(f"{path}: secrets missing for this inventory",
                             hint="run `pbxctl provision render` once to generate them")
        text = "# pbxctl secrets: generated; keep private (mode 0600). dsn: filled by ops.\n"
        text += yaml.safe_dump(data, sort_keys=True, allow_unicode=True)
        atomic_write(path, text, mode=0o600)
        os.chmod(path, 0o600)
    return Secrets(str(path), data["ami"], data["sip"], data["dsn"], ami_watch=data["ami_watch"],
                   ami_notify=data["ami_notify"], ami_console=data["ami_console"])
