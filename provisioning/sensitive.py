"""Which rendered files hold secrets, how they are written (0640, the PBX's group), and how a
diff shows them (values masked; that a secret changed stays visible)."""

from __future__ import annotations

import re

from pbxctl.core.redact import MASK

SECRET_FILES = frozenset({"pjsip.conf", "manager.conf", "directory.xml"})
PRIVATE_MODE = 0o640
PUBLIC_MODE = 0o644
# The group the PBX runs as, where it exists on the host (Debian's packages create these).
PBX_GROUPS = ("asterisk", "freeswitch")

# A config line, or the same line in a unified diff (after its -, + or space).
_INI = re.compile(r"^(?P<key>[-+ ]?\s*(?:password|secret|md5_cred)\s*=\s*)(?P<value>.*)$",
                  re.IGNORECASE)
_XML = re.compile(r'(?P<key>name="(?:password|vm-password|a1-hash)"\s+value=")(?P<value>[^"]*)"')


def is_secret(name: str) -> bool:
    return name in SECRET_FILES


def mode_for(name: str) -> int:
    return PRIVATE_MODE if is_secret(name) else PUBLIC_MODE


def mask(line: str) -> str:
    """One config line with any secret value replaced by a mask."""
    m = _INI.match(line.rstrip("\n"))
    if m:
        return f"{m.group('key')}{MASK}" + ("\n" if line.endswith("\n") else "")
    return _XML.sub(lambda x: f'{x.group("key")}{MASK}"', line)
