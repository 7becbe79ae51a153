"""Calls county terminal seats about their dispatched work orders.

For each order due (dispatched, next call time reached): synthesise its summary in Mandarin
into the province PBX's own prompt folder (central control, local playback: the PBX plays a
file from its disk), then originate a call to the seat — over AMI on an Asterisk province
(``AmiDialer``), over the inbound event socket on a FreeSWITCH one (``EslDialer``) — into the
dialplan's ``pbxctl-order-notify``, which reads the summary and asks for 1 (accept) or 2
(return); the `order_answer` handler (AGI or ESL) applies the key. A seat that does not
answer or does not accept is called again after ``ring_timeout + retry_interval``; after
``attempts`` calls the order is escalated to its prefecture. Every call is a line in the
order's history.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from pbxctl.core.errors import InputError, PbxctlError, StoreUnavailable
from pbxctl.core.files import atomic_write
from pbxctl.core.words import digit_words, number_words
from pbxctl.data.orders import Order, due_for_notify, escalate, note_notify
from pbxctl.data.rejects import quarantine
from pbxctl.data.store import Store
from pbxctl.pbx.ami import AmiClient
from pbxctl.pbx.esl_inbound import InboundEsl
from pbxctl.services.tts import TtsCache, TtsRequest
from provisioning.model import Inventory

log = logging.getLogger("pbxctl.services.order_notifier")

NOTIFY_CONTEXT = "pbxctl-order-notify"
TYPE_WORDS = {"repair": "抢修", "billing": "电费争议", "outage": "停电报告", "meter": "计量",
              "other": "其他"}
PRIORITY_WORDS = {1: "紧急", 2: "高", 3: "普通", 4: "低"}


class OrderDialer(Protocol):
    def call(self, order: Order, *, prompt: Path, ring_timeout: int) -> str:
        """Start the notify call (not waiting for it); what happened, for the history."""
        ...


class AmiDialer:
    """Asterisk: AMI Originate (Async) into ``pbxctl-order-notify,s,1``."""

    def __init__(self, ami: AmiClient) -> None:
        self.ami = ami

    def call(self, order: Order, *, prompt: Path, ring_timeout: int) -> str:
        reply = self.ami.action(
            "Originate", Channel=f"PJSIP/{order.seat}", Context=NOTIFY_CONTEXT, Exten="s",
            Priority="1", Timeout=str(ring_timeout * 1000), Async="true",
            CallerID=f"\"工单{order.id}\" <{order.id}>",
            Variable={"PBXCTL_ORDER": str(order.id), "PBXCTL_ORDER_SEAT": str(order.seat),
                      "PBXCTL_ORDER_VERSION": str(order.version),
                      "PBXCTL_ORDER_PROMPT": str(prompt.with_suffix(""))})  # Read adds .wav
        return "originated" if reply.ok else f"originate refused: {reply.response.get('Message')}"


# What may go into an originate string's {var=value} list unquoted: no separator, no quote,
# no variable syntax (FreeSWITCH would expand it).
_ESL_SAFE = re.compile(r"[A-Za-z0-9/_.+-]+")


class EslDialer:
    """FreeSWITCH: ``bgapi originate`` over the province's inbound event socket into the
    ``pbxctl-order-notify`` extension of its ``pbxctl`` context (the job's outcome is the
    switch's BACKGROUND_JOB event; a seat that does not answer is called again later, as on
    Asterisk). ``connect`` returns a connected client."""

    def __init__(self, connect: Callable[[], InboundEsl], *, domain: str = "pbxctl") -> None:
        self.connect, self.domain = connect, domain

    def call(self, order: Order, *, prompt: Path, ring_timeout: int) -> str:
        values = {"pbxctl_order": str(order.id), "pbxctl_order_seat": str(order.seat),
                  "pbxctl_order_version": str(order.version),
                  "pbxctl_order_prompt": str(prompt),
                  "origination_caller_id_number": str(order.id),
                  "originate_timeout": str(ring_timeout)}
        for key, value in values.items():
            if not _ESL_SAFE.fullmatch(value):
                raise InputError(f"order {order.id}: {key} {value!r} cannot go into an "
                                 "originate string")
        head = ",".join(f"{k}={v}" for k, v in values.items())
        client = self.connect()
        try:
            job = client.bgapi(f"originate {{{head}}}user/{order.seat}@{self.domain} "
                               f"{NOTIFY_CONTEXT} XML pbxctl")
        finally:
            client.close()
        return f"originated (job {job})"


def summary_text(order: Order) -> str:
    digits = digit_words(order.account_no)
    return (f"您有一张新工单，编号{number_words(order.id)}，类型{TYPE_WORDS[order.type]}，"
            f"优先级{PRIORITY_WORDS.get(order.priority, '普通')}。户号{digits}。"
            f"地址：{order.address}。{order.description}")


class OrderNotifier:
    def __init__(self, *, store: Store, inv: Inventory, dialer: OrderDialer, prompt_dir: Path,
                 tts: TtsCache, clock: Callable[[], datetime] | None = None) -> None:
        self.store, self.inv, self.dialer = store, inv, dialer
        self.prompt_dir = prompt_dir  # the province PBX's PBXCTL_PROMPT_DIR
        self.tts = tts
        self.clock = clock or (lambda: datetime.now(UTC))
        self._alerted: set[int] = set()

    def summary_prompt(self, order: Order) -> Path:
        """The summary as a WAV file on the PBX's disk."""
        target = self.prompt_dir / "orders" / f"order-{order.id}.wav"
        if not target.is_file():
            wav = self.tts.get(TtsRequest(summary_text(order)))
            atomic_write(target, wav.read_bytes())
        return target

    def run_once(self) -> list[str]:
        """One pass over the due orders; returns what it did, a line per order."""
        done: list[str] = []
        now = self.clock()
        for order in due_for_notify(self.store, now=now):
            try:
                done.append(self._notify(order, now))
            except StoreUnavailable:
                raise  # the database, not this order: the caller waits and retries
            except Exception as exc:  # noqa: BLE001 -- one order must not stop the others
                done.append(self._quarantine(order, exc))
        return done

    def _notify(self, order: Order, now: datetime) -> str:
        rules = self.inv.dispatch
        if order.notify_attempts >= rules.attempts:
            try:
                escalate(self.store, order.id, actor="dispatcher",
                         reason=f"not accepted after {order.notify_attempts} call(s) to "
                                f"{order.seat}: back to prefecture {order.prefecture}")
                return f"order {order.id}: escalated to {order.prefecture}"
            except InputError as exc:  # accepted or returned in the meantime
                log.info("order %s not escalated: %s", order.id, exc.message)
                return f"order {order.id}: not escalated ({exc.message})"
        attempt = order.notify_attempts + 1
        result = self._call(order)
        note_notify(self.store, order.id, attempt=attempt,
                    next_at=now + timedelta(seconds=rules.ring_timeout + rules.retry_interval),
                    note=f"call {attempt}/{rules.attempts} to {order.seat}: {result}")
        return f"order {order.id}: call {attempt} to {order.seat} ({result})"

    def _quarantine(self, order: Order, exc: Exception) -> str:
        """The order cannot be announced: a person must see it. Escalate it to its prefecture
        with the reason (it leaves the due list: no crash loop), keep the reject, alert once."""
        reason = f"{type(exc).__name__}: {exc}"
        if order.id not in self._alerted:
            log.error("order %s cannot be announced to %s (%s): escalated",
                      order.id, order.seat, reason)
            self._alerted.add(order.id)
        try:
            quarantine(self.store, source="order-notifier", reason=reason, record=order)
            escalate(self.store, order.id, actor="dispatcher",
                     reason=f"cannot be announced by phone ({reason[:200]}): back to "
                            f"prefecture {order.prefecture}")
        except PbxctlError as again:
            log.warning("order %s: quarantine incomplete: %s", order.id, again.message)
        return f"order {order.id}: cannot be announced, escalated ({reason[:80]})"

    def _call(self, order: Order) -> str:
        return self.dialer.call(order, prompt=self.summary_prompt(order),
                                ring_timeout=self.inv.dispatch.ring_timeout)
