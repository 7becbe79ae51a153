"""The IVR's own prompts (ids and Mandarin texts) and how numbers become prompt fragments.

These go into the central catalogue like any prompt (`pbxctl prompts init`) and are published
to every site; handlers and the dialplan play ``<id>/current`` from the site's own disk.
Dynamic answers (amounts, dates) are spoken by concatenating one fragment per character, so
nothing but file names crosses the WAN and no TTS runs on the call path.
"""

from __future__ import annotations

from datetime import date, datetime

from pbxctl.core.words import money_words, number_words, year_words
from pbxctl.data.prompts import WELCOME_DEFAULT, add_rule, ensure_prompt, rules
from pbxctl.data.store import Store

SYSTEM: dict[str, str] = {
    WELCOME_DEFAULT: "您好，欢迎致电国网浙江电力九五五九八客户服务热线。",
    "ivr-menu": "查询电费请按1，查询停电信息请按2，人工服务请按0。",
    "enter-account": "请输入您的十位户号，以井号键结束。",
    "enter-account-or-area": "请输入您的十位户号，以井号键结束；直接按井号键查询您所在地区。",
    "account-invalid": "户号有误，请重新输入。",
    "bill-period": "您的账期为",
    "bill-amount": "应缴电费",
    "bill-due": "缴费截止日期为",
    "bill-none": "您目前没有待缴电费。",
    "outage-current": "您所在区域当前有停电，",
    "outage-planned": "您所在区域有计划停电，",
    "outage-from": "从",
    "outage-to": "至",
    "outage-none": "您所在区域目前没有停电信息。",
    "apology": "系统繁忙，正在为您转接人工服务。",
    "transfer": "正在为您转接人工服务，请稍候。",
    "goodbye": "感谢您的来电，再见。",
    "closed": "现在是非工作时间，人工服务暂停，您可以继续使用自助服务查询电费和停电信息。",
    "order-type": "请选择工单类型：抢修请按1，电费争议请按2，停电报告请按3，计量请按4，其他请按5。",
    "order-account": "请输入客户十位户号，以井号键结束。",
    "order-created": "工单已创建并派发，编号为",
    "order-refused": "工单未能创建，请在系统中处理。",
    "order-keys": "接受工单请按1，退回请按2。",
    "order-accepted": "工单已接受。",
    "order-returned": "工单已退回。",
}

# Every character a spoken number, amount or date can contain.
FRAGMENT_CHARS = "零一二三四五六七八九十百千万亿元角分整年月日时点"


def fragment_id(ch: str) -> str:
    return f"zh-{ord(ch):04x}"


FRAGMENTS: dict[str, str] = {fragment_id(ch): ch for ch in FRAGMENT_CHARS}


def all_system_prompts() -> dict[str, str]:
    return {**SYSTEM, **FRAGMENTS}


def fragments(words: str) -> list[str]:
    """Chinese number words → fragment prompt ids, one per character."""
    missing = [ch for ch in words if ch not in FRAGMENT_CHARS]
    if missing:
        raise ValueError(f"no fragment for {''.join(missing)!r} in {words!r}")
    return [fragment_id(ch) for ch in words]


def money(amount: str) -> list[str]:
    return fragments(money_words(amount))


def period(yyyymm: str) -> list[str]:
    year, month = yyyymm.split("-")
    return fragments(f"{year_words(int(year))}年{number_words(int(month))}月")


def day(d: date) -> list[str]:
    return fragments(f"{year_words(d.year)}年{number_words(d.month)}月{number_words(d.day)}日")


def moment(t: datetime) -> list[str]:
    """Month, day and hour (minutes when not on the hour): 12月5日9时30分."""
    words = f"{number_words(t.month)}月{number_words(t.day)}日{number_words(t.hour)}时"
    if t.minute:
        words += f"{number_words(t.minute)}分"
    return fragments(words)


def init_system_prompts(store: Store) -> list[str]:
    """Put the IVR's prompts into the catalogue (version 1 of each id not yet there) and a
    province-wide default welcome rule if there is none. Idempotent; returns the ids added."""
    added = [pid for pid, text in all_system_prompts().items()
             if ensure_prompt(store, prompt_id=pid, text=text,
                              kind="fragment" if pid in FRAGMENTS else "system")]
    if not any(r.kind == "default" for r in rules(store)):
        add_rule(store, prompt_id=WELCOME_DEFAULT, kind="default")
    return added
