"""UI languages: zh-CN by default, English available. Messages are written in English in the
templates and code; ``locale/<lang>/LC_MESSAGES/console.po`` translates them (Babel's catalog
format, compiled in memory at start — no build step, no .mo files in the tree). Times are
shown in the province's time zone.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LANGS = ("zh_CN", "en")
DEFAULT_LANG = "zh_CN"


def load_translations(lang: str) -> NullTranslations:
    if lang == "en":
        return NullTranslations()
    po = resources.files("pbxctl.console").joinpath(f"locale/{lang}/LC_MESSAGES/console.po")
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(fp=buf)


@dataclass(frozen=True)
class Clock:
    """Formats instants in the province's zone for one language."""

    zone: ZoneInfo
    lang: str

    def time(self, when: datetime | None) -> str:
        if when is None:
            return ""
        return format_datetime(when.astimezone(self.zone), "yyyy-MM-dd HH:mm:ss",
                               locale=self.lang)

    def iso(self, when: datetime) -> str:
        return when.astimezone(self.zone).isoformat(timespec="seconds")
