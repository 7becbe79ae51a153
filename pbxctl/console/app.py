"""The console's ASGI application: explicit routes, dependencies passed in (Starlette's own
examples' style). Every route goes through ``_principal`` (who is this, still allowed?) and,
for an order, ``_order_for`` (may they see it?) — the one place of each check.

Most handlers are plain functions: Starlette runs them in its thread pool, where the
synchronous store is at home. The event stream is the one coroutine.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import logging
import secrets
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from pbxctl.console import labels, passwords
from pbxctl.console.calls import LiveCalls, Pop
from pbxctl.console.i18n import DEFAULT_LANG, LANGS, Clock, load_translations
from pbxctl.console.live import OrderFeed
from pbxctl.console.roles import (
    ACTIONS,
    Principal,
    home_page,
    may_act_on_order,
    may_see_order,
    order_scope,
)
from pbxctl.console.roles import principal as principal_of
from pbxctl.core.errors import InputError, PbxctlError, StoreUnavailable
from pbxctl.data import console_auth, customers, kpis, orders, site_states
from pbxctl.data.store import Store
from provisioning.model import Inventory

log = logging.getLogger("pbxctl.console")
T = TypeVar("T")
SESSION_COOKIE = "pbxctl_session"
LOGIN_CSRF_COOKIE = "pbxctl_login_csrf"
SECURITY_HEADERS = {
    # No inline script or style anywhere: an injected <script> would not run even if some
    # field escaped the templates' autoescaping.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; media-src 'self'; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class ConsoleSettings:
    """The ``console`` section of the services' config (docs/console.md)."""

    cookie_secure: bool = True  # off only for plain-HTTP tests on loopback
    session_idle: timedelta = timedelta(minutes=30)
    session_max: timedelta = timedelta(hours=12)
    login_window: timedelta = timedelta(minutes=15)
    login_max_per_login: int = 5
    login_max_per_client: int = 20
    recordings_root: Path | None = None  # None: recordings are not served by this console
    keepalive_s: float = 15.0
    inbox_limit: int = 200
    sl_seconds: int = 20  # service level: answered within this many seconds
    wallboard_every_s: float = 0.5  # a new wallboard snapshot this often (pushed if changed)


@dataclass
class ConsoleDeps:
    store: Store
    inventory: Inventory
    feed: OrderFeed
    settings: ConsoleSettings = field(default_factory=ConsoleSettings)
    calls: LiveCalls | None = None  # None: no PBX configured, no screen pops
    # Set when the server begins to stop: open event streams end at once instead of holding
    # the shutdown until uvicorn cancels them (pbxctl/console/server.py sets it).
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    envs: dict[str, Environment] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for lang in LANGS:
            env = Environment(loader=PackageLoader("pbxctl.console", "templates"),
                              autoescape=True, undefined=StrictUndefined,
                              extensions=["jinja2.ext.i18n"])
            env.install_gettext_translations(load_translations(lang),  # type: ignore[attr-defined]
                                             newstyle=True)
            self.envs[lang] = env

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.inventory.province.options.timezone)


class Denied(Exception):
    """Ends a request with ``status`` and one line saying why (never a stack trace)."""

    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status
        self.why = why


@dataclass(frozen=True)
class Seen:
    """A request's signed-in user: who, their session's CSRF token and language."""

    who: Principal
    csrf: str
    lang: str


def _lang_of(request: Request) -> str:
    asked = request.query_params.get("lang", "")
    return asked if asked in LANGS else DEFAULT_LANG


class Console:
    def __init__(self, deps: ConsoleDeps) -> None:
        self.deps = deps
        self._board_cache: tuple[float, dict[str, Any]] | None = None
        self._board_lock = threading.Lock()
        self._board_html: dict[str, str] = {}
        self._board_at: dict[str, str] = {}
        self._board_version = 0
        self._board_subs: set[asyncio.Queue[int]] = set()
        self._board_wake = asyncio.Event()

    # -- the checks ------------------------------------------------------------------------
    def _principal(self, request: Request) -> Seen:
        token = request.cookies.get(SESSION_COOKIE, "")
        if not token:
            raise Denied(401, "not signed in")
        s = self.deps.settings
        session = console_auth.find_session(self.deps.store, token=token, idle=s.session_idle)
        if session is None:
            raise Denied(401, "session expired or signed out")
        login = console_auth.get_login(self.deps.store, session.login)
        who = principal_of(self.deps.inventory, session.login,
                           admin=bool(login and login.admin)) if login else None
        if who is None:
            raise Denied(403, f"{session.login} has no role in the inventory")
        return Seen(who, session.csrf, session.lang)

    @staticmethod
    def _check_csrf(seen: Seen, form: Mapping[str, Any], request: Request) -> None:
        sent = str(form.get("csrf") or request.headers.get("x-csrf-token", ""))
        if not sent or not secrets.compare_digest(sent, seen.csrf):
            raise Denied(403, "missing or wrong CSRF token: reload the page")

    def _order_for(self, seen: Seen, order_id: int) -> orders.Order:
        try:
            order = orders.get(self.deps.store, order_id)
        except InputError:
            raise Denied(404, f"work order {order_id}: no such order") from None
        if not may_see_order(seen.who, order):
            raise Denied(403, f"work order {order_id} is outside your scope")
        return order

    # -- rendering -------------------------------------------------------------------------
    def render(self, name: str, lang: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        env = self.deps.envs[lang]
        clock = Clock(self.deps.zone, lang)
        html = env.get_template(name).render(L=labels, clock=clock, lang=lang, langs=LANGS,
                                             **ctx)
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    def error(self, request: Request, denied: Denied, lang: str) -> Response:
        if denied.status == 401 and request.method == "GET" and \
                "text/html" in request.headers.get("accept", ""):
            return RedirectResponse("/login", status_code=303, headers=SECURITY_HEADERS)
        return self.render("error.html", lang, status=denied.status, why=denied.why,
                           code=denied.status)

    def _row_ctx(self, seen: Seen, order: orders.Order, now: datetime) -> dict[str, Any]:
        return {"o": order, "age": now - order.created_at,
                "sla": labels.sla_state(order.priority, now - order.created_at, order.status),
                "can": {a: may_act_on_order(seen.who, order, a) for a in
                        ("accept", "return", "close")}}

    def _rows(self, seen: Seen) -> list[dict[str, Any]]:
        prefecture, county = order_scope(seen.who)
        now = datetime.now(UTC)
        found = orders.list_orders(self.deps.store, county=county, prefecture=prefecture,
                                   limit=self.deps.settings.inbox_limit)
        return [self._row_ctx(seen, o, now) for o in found]

    # -- routes ----------------------------------------------------------------------------
    def login_page(self, request: Request) -> Response:
        lang = _lang_of(request)
        token = secrets.token_urlsafe(24)
        resp = self.render("login.html", lang, csrf=token, failed="")
        self._cookie(resp, LOGIN_CSRF_COOKIE, token, max_age=3600)
        return resp

    def login(self, request: Request, form: Mapping[str, Any]) -> Response:
        lang = str(form.get("lang", DEFAULT_LANG))
        lang = lang if lang in LANGS else DEFAULT_LANG
        sent = str(form.get("csrf", ""))
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not sent or not cookie or not secrets.compare_digest(sent, cookie):
            raise Denied(403, "missing or wrong CSRF token: reload the page")
        login = str(form.get("login", "")).strip()[:64]
        password = str(form.get("password", ""))
        client = request.client.host if request.client else "?"
        s, store = self.deps.settings, self.deps.store
        by_login, by_client = console_auth.recent_failures(store, login=login, client=client,
                                                           window=s.login_window)
        if by_login >= s.login_max_per_login or by_client >= s.login_max_per_client:
            log.warning("sign-in refused (too many failures): login=%r client=%s", login,
                        client)
            return self.render("login.html", lang, status=429, csrf=sent,
                               failed="too many")
        record = console_auth.get_login(store, login)
        ok = passwords.verify(record.password_hash if record else None, password)
        who = principal_of(self.deps.inventory, login, admin=record.admin) \
            if ok and record else None
        if who is None:
            console_auth.note_failure(store, login=login, client=client)
            log.info("sign-in failed: login=%r client=%s", login, client)
            return self.render("login.html", lang, status=401, csrf=sent, failed="wrong")
        assert record is not None
        if passwords.needs_rehash(record.password_hash):
            console_auth.update_hash(store, login=login,
                                     password_hash=passwords.hash_password(password))
        console_auth.clear_failures(store, login=login)
        token = secrets.token_urlsafe(32)
        console_auth.create_session(store, token=token, login=login,
                                    csrf=secrets.token_urlsafe(32), lang=lang,
                                    lifetime=s.session_max)
        log.info("signed in: %s (%s) from %s", login, who.role, client)
        resp = RedirectResponse(home_page(who), status_code=303, headers=SECURITY_HEADERS)
        self._cookie(resp, SESSION_COOKIE, token,
                     max_age=int(s.session_max.total_seconds()))
        resp.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
        return resp

    def _cookie(self, resp: Response, name: str, value: str, *, max_age: int) -> None:
        resp.set_cookie(name, value, max_age=max_age, path="/", httponly=True,
                        samesite="strict", secure=self.deps.settings.cookie_secure)

    def logout(self, request: Request, form: Mapping[str, Any]) -> Response:
        seen = self._principal(request)
        self._check_csrf(seen, form, request)
        console_auth.end_session(self.deps.store, token=request.cookies[SESSION_COOKIE])
        resp = RedirectResponse(f"/login?lang={seen.lang}", status_code=303,
                                headers=SECURITY_HEADERS)
        resp.delete_cookie(SESSION_COOKIE, path="/")
        return resp

    def set_lang(self, request: Request, form: Mapping[str, Any]) -> Response:
        seen = self._principal(request)
        self._check_csrf(seen, form, request)
        lang = str(form.get("lang", ""))
        if lang not in LANGS:
            raise Denied(400, f"lang: one of {', '.join(LANGS)}")
        console_auth.set_session_lang(self.deps.store, token=request.cookies[SESSION_COOKIE],
                                      lang=lang)
        return RedirectResponse(home_page(seen.who), status_code=303, headers=SECURITY_HEADERS)

    def home(self, request: Request) -> Response:
        seen = self._principal(request)
        return RedirectResponse(home_page(seen.who), status_code=303, headers=SECURITY_HEADERS)

    def inbox(self, request: Request) -> Response:
        seen = self._principal(request)
        return self.render("inbox.html", seen.lang, seen=seen, rows=self._rows(seen))

    def inbox_rows(self, request: Request) -> Response:
        seen = self._principal(request)
        return self.render("_rows.html", seen.lang, seen=seen, rows=self._rows(seen))

    def order_row(self, request: Request) -> Response:
        seen = self._principal(request)
        order = self._order_for(seen, int(request.path_params["order_id"]))
        return self.render("_rows.html", seen.lang, seen=seen,
                           rows=[self._row_ctx(seen, order, datetime.now(UTC))])

    def order_page(self, request: Request, *, problem: str = "",
                   status: int = 200) -> Response:
        seen = self._principal(request)
        order = self._order_for(seen, int(request.path_params["order_id"]))
        return self._order_page(seen, order, problem=problem, status=status)

    def _order_page(self, seen: Seen, order: orders.Order, *, problem: str = "",
                    status: int = 200) -> Response:
        store = self.deps.store
        rows = store.execute("SELECT holder, address FROM accounts WHERE account_no = %s",
                             (order.account_no,))
        customer = {"holder": str(rows[0][0]), "address": str(rows[0][1])} if rows else None
        return self.render("order.html", seen.lang, status=status, seen=seen,
                           row=self._row_ctx(seen, order, datetime.now(UTC)),
                           customer=customer, history=orders.history(store, order.id),
                           recording=self._recording_path(order) is not None,
                           problem=problem)

    def act(self, request: Request, form: Mapping[str, Any]) -> Response:
        seen = self._principal(request)
        self._check_csrf(seen, form, request)
        action = str(request.path_params["action"])
        if action not in ACTIONS:
            raise Denied(404, f"{action!r}: not an action (those are: {', '.join(ACTIONS)})")
        order = self._order_for(seen, int(request.path_params["order_id"]))
        if not may_act_on_order(seen.who, order, action):
            if seen.who.role == "county" and order.county == seen.who.county:
                raise Denied(409, f"work order {order.id} is dispatched to "
                                  f"{order.seat or 'no seat'}, not to you")
            raise Denied(403, f"you may not {action} work order {order.id}")
        try:
            version = int(str(form.get("version", "")))
        except ValueError:
            raise Denied(400, "version: the order's version as the page showed it") from None
        text = str(form.get("text", "")).strip()[:2000]
        store, me = self.deps.store, seen.who.login
        try:
            if order.version != version:  # close has no version check of its own below
                raise InputError(f"work order {order.id} changed since version {version} "
                                 f"(now {order.status}, version {order.version}): "
                                 "nothing done")
            if action == "accept":
                orders.accept(store, order.id, seat=me, actor=me, expect_version=version)
            elif action == "return":
                orders.return_order(store, order.id, reason=text, actor=me, seat=me,
                                    expect_version=version)
            else:
                orders.close(store, order.id, actor=me, note=text)
        except InputError as exc:
            # The one loser of a race (phone and screen, two tabs) is told why.
            return self._order_page(seen, orders.get(store, order.id), problem=str(exc),
                                    status=409)
        log.info("work order %s: %s by %s", order.id, action, me)
        return RedirectResponse(f"/orders/{order.id}", status_code=303,
                                headers=SECURITY_HEADERS)

    def _recording_path(self, order: orders.Order) -> Path | None:
        root = self.deps.settings.recordings_root
        if root is None or not order.recording:
            return None
        rows = self.deps.store.execute(
            "SELECT path FROM recordings WHERE uniqueid = %s AND status = 'ok' LIMIT 1",
            (order.recording,))
        if not rows:
            return None
        path = Path(str(rows[0][0])).resolve()
        # Only files below the configured root, whatever the index says.
        if not path.is_relative_to(root.resolve()) or not path.is_file():
            return None
        return path

    def recording(self, request: Request) -> Response:
        seen = self._principal(request)
        order = self._order_for(seen, int(request.path_params["order_id"]))
        path = self._recording_path(order)
        if path is None:
            raise Denied(404, f"work order {order.id}: no recording available here")
        log.info("recording of work order %s played by %s", order.id, seen.who.login)
        return FileResponse(path, media_type="audio/wav",
                            headers={**SECURITY_HEADERS, "Cache-Control": "private, no-store"})

    async def events(self, request: Request) -> Response:
        seen = await run_in_threadpool(self._principal, request)
        return _event_response(self._stream(request, seen))

    async def _stream(self, request: Request, seen: Seen) -> AsyncIterator[str]:
        feed = self.deps.feed
        prefecture, county = order_scope(seen.who)

        def item(ev: dict[str, Any]) -> str:
            if ev["kind"] == "resync":
                return "event: resync\ndata: {}\n\n"
            if (prefecture is None or ev.get("prefecture") == prefecture) and \
                    (county is None or ev.get("county") == county):
                return f"event: order\ndata: {json.dumps({'id': ev.get('id')})}\n\n"
            return ""

        with feed.subscribe() as sub:
            first = "event: ready\ndata: {}\n\n" if feed.connected.is_set() else ""
            async for chunk in self._event_stream(request, sub.get, item, first=first):
                yield chunk

    async def _event_stream(self, request: Request, get: Callable[[], Awaitable[T]],
                            item: Callable[[T], str], *, first: str = "",
                            idle: Callable[[], str] = lambda: ": keepalive\n\n"
                            ) -> AsyncIterator[str]:
        """The one loop of every event stream: ``first``, then ``item(x)`` for each thing
        ``get`` returns (empty: nothing sent); on a quiet keep-alive period ``idle()``. At
        least once per period it checks the session is still good — a stream must not outlive
        it — and it ends as soon as the server stops."""
        keepalive = self.deps.settings.keepalive_s
        yield "retry: 2000\n\n" + first
        checked = time.monotonic()
        while True:
            got, value = await _next(get(), self.deps.stopping, keepalive)
            if got == "stop":
                return
            if got == "timeout" or time.monotonic() - checked > keepalive:
                checked = time.monotonic()
                try:
                    await run_in_threadpool(self._principal, request)
                except Denied:
                    yield "event: signout\ndata: {}\n\n"
                    return
            if got == "timeout":
                yield idle()
                continue
            out = item(value)  # type: ignore[arg-type]
            if out:
                yield out

    # -- the agent's screen ------------------------------------------------------------------
    def _agent(self, request: Request) -> Seen:
        seen = self._principal(request)
        if seen.who.role != "agent":
            raise Denied(403, "this page is for agents")
        return seen

    def agent_page(self, request: Request) -> Response:
        seen = self._agent(request)
        calls = self.deps.calls
        pops = calls.recent(seen.who.login) if calls else []
        filed: orders.Order | None = None
        if request.query_params.get("filed", "").isdigit():
            try:
                filed = orders.get(self.deps.store, int(request.query_params["filed"]))
            except InputError:
                filed = None
            if filed is not None and filed.created_by != seen.who.login:
                filed = None
        state = calls.member_state(seen.who.login) if calls and calls.connected else ""
        return self.render("agent.html", seen.lang, seen=seen, pops=pops,
                           pop_ctx=self._pop_ctx(pops[0]) if pops else None,
                           state=state, live=calls is not None, filed=filed)

    def _pop_ctx(self, pop: Pop) -> dict[str, Any]:
        found = customers.customer(self.deps.store, pop.account, now=datetime.now(UTC)) \
            if pop.account else None
        return {"pop": pop, "customer": found}

    def agent_pop(self, request: Request) -> Response:
        seen = self._agent(request)
        calls = self.deps.calls
        pop = calls.pop(seen.who.login, str(request.path_params["linkedid"])) if calls else None
        if pop is None:
            raise Denied(404, "no such call on your phone")
        return self.render("_pop.html", seen.lang, seen=seen, **self._pop_ctx(pop))

    def agent_order(self, request: Request, form: Mapping[str, Any]) -> Response:
        seen = self._agent(request)
        self._check_csrf(seen, form, request)
        store, me = self.deps.store, seen.who.login
        linkedid = str(form.get("linkedid", ""))
        calls = self.deps.calls
        if linkedid and (calls is None or calls.pop(me, linkedid) is None):
            raise Denied(403, "that call was not on your phone")
        account = str(form.get("account_no", "")).strip()
        rows = store.execute("SELECT prefecture FROM accounts WHERE account_no = %s",
                             (account,))
        if rows and str(rows[0][0]) != seen.who.prefecture:
            raise Denied(403, f"account {account} belongs to another prefecture")
        try:
            priority = int(str(form.get("priority", "3")))
            order = orders.create(store, self.deps.inventory, type=str(form.get("type", "")),
                                  account_no=account, created_by=me, priority=priority,
                                  description=str(form.get("description", "")).strip()[:2000],
                                  call_site=self.deps.inventory.province.pbx.name
                                  if linkedid else "", call_linkedid=linkedid)
            orders.dispatch(store, self.deps.inventory, order.id, actor=me)
        except (InputError, ValueError) as exc:
            raise Denied(400, str(exc)) from None
        log.info("work order %s filed by %s (call %s)", order.id, me, linkedid or "-")
        return RedirectResponse(f"/agent?filed={order.id}", status_code=303,
                                headers=SECURITY_HEADERS)

    def agent_state(self, request: Request, form: Mapping[str, Any]) -> Response:
        seen = self._agent(request)
        self._check_csrf(seen, form, request)
        state, reason = str(form.get("state", "")), str(form.get("reason", ""))
        if state not in ("ready", "paused"):
            raise Denied(400, "state: ready or paused")
        if state == "paused" and reason not in labels.PAUSE_REASONS:
            raise Denied(400, f"reason: one of {', '.join(labels.PAUSE_REASONS)}")
        if self.deps.calls is None:
            raise Denied(503, "no PBX connection is configured for this console")
        try:
            self.deps.calls.queue_pause(agent=seen.who.login, paused=state == "paused",
                                        reason=reason if state == "paused" else "")
        except PbxctlError as exc:
            raise Denied(503, exc.message) from None
        log.info("agent %s: %s %s", seen.who.login, state, reason)
        return RedirectResponse("/agent", status_code=303, headers=SECURITY_HEADERS)

    async def agent_events(self, request: Request) -> Response:
        seen = await run_in_threadpool(self._agent, request)
        return _event_response(self._agent_stream(request, seen))

    async def _agent_stream(self, request: Request, seen: Seen) -> AsyncIterator[str]:
        calls = self.deps.calls
        if calls is None:
            yield "event: unavailable\ndata: {}\n\n"
            return

        def state() -> str:
            return f"event: {'ready' if calls.connected else 'unavailable'}\ndata: {{}}\n\n"

        def item(pop: Pop) -> str:
            return f"event: pop\ndata: {json.dumps({'linkedid': pop.linkedid})}\n\n"

        with calls.subscribe(seen.who.login) as q:
            async for chunk in self._event_stream(request, q.get, item, first=state(),
                                                  idle=state):
                yield chunk

    # -- the supervisor wallboard -------------------------------------------------------------
    def _supervisor(self, request: Request) -> Seen:
        seen = self._principal(request)
        if seen.who.role not in ("supervisor", "admin"):
            raise Denied(403, "the wallboard is for supervisors")
        return seen

    def _board(self) -> dict[str, Any]:
        """One snapshot of the province, shared by every open wallboard for
        ``wallboard_every_s`` (200 screens cost one query set, not 200)."""
        now = time.monotonic()
        cached = self._board_cache
        if cached is not None and now - cached[0] < self.deps.settings.wallboard_every_s:
            return cached[1]
        with self._board_lock:
            cached = self._board_cache
            if cached is not None and now - cached[0] < self.deps.settings.wallboard_every_s:
                return cached[1]
            board = self._compute_board()
            self._board_cache = (time.monotonic(), board)
            return board

    def _compute_board(self) -> dict[str, Any]:
        inv, store, zone = self.deps.inventory, self.deps.store, self.deps.zone
        local_now = datetime.now(zone)
        since = local_now.replace(hour=0, minute=0, second=0, microsecond=0)
        until = since + timedelta(days=1)
        figures = kpis.prefecture_kpis(store, since=since, until=until,
                                       sl_seconds=self.deps.settings.sl_seconds)
        live = self.deps.calls.queues() if self.deps.calls else {}
        states = site_states.latest(store)
        rows = [{"code": p.code, "name": p.name, "live": live.get(p.queue),
                 "state": states.get(p.code),
                 "k": figures.get(p.code, kpis.Kpis(0, 0, 0, 0, None)), "agents": p.agents}
                for p in inv.prefectures]
        hours = kpis.hourly(store, since=since, until=until, zone=str(zone))
        peak = max([1, *(h.offered for h in hours)])
        return {"rows": rows, "supervisors": live.get(inv.province.supervisor_queue),
                "hours": hours, "peak": peak, "orders": orders.open_report(store),
                "buckets": [b for b, _ in orders.AGE_BUCKETS], "live_ok": bool(live),
                "at": datetime.now(UTC), "sl_seconds": self.deps.settings.sl_seconds,
                "stale_s": STATE_STALE_S}

    def spy(self, request: Request, form: Mapping[str, Any]) -> Response:
        seen = self._supervisor(request)
        self._check_csrf(seen, form, request)
        if seen.who.role != "supervisor":
            raise Denied(403, "only a supervisor seat has a phone to listen with")
        mode, agent = str(form.get("mode", "")), str(form.get("agent", ""))
        if mode not in labels.SPY_CODE:
            raise Denied(400, f"mode: one of {', '.join(labels.SPY_CODE)}")
        ext = next((a.extension for p in self.deps.inventory.prefectures for a in p.agents
                    if a.id == agent), None)
        if ext is None:
            raise Denied(400, f"agent {agent!r}: not an agent of the inventory")
        if self.deps.calls is None:
            raise Denied(503, "no PBX connection is configured for this console")
        try:
            self.deps.calls.spy(supervisor=seen.who.login, agent=agent, mode=mode,
                                code=labels.SPY_CODE[mode] + ext)
        except PbxctlError as exc:
            raise Denied(503, exc.message) from None
        log.info("supervisor %s: %s on %s (phone rings)", seen.who.login, mode, agent)
        return RedirectResponse("/wallboard", status_code=303, headers=SECURITY_HEADERS)

    def _report(self, request: Request) -> tuple[Seen, dict[str, Any]]:
        seen = self._supervisor(request)
        q = request.query_params
        pref = q.get("prefecture", "") or self.deps.inventory.prefectures[0].code
        try:
            self.deps.inventory.prefecture(pref)
        except KeyError:
            raise Denied(400, f"prefecture {pref!r}: not in the inventory") from None
        zone = self.deps.zone
        try:
            day = date.fromisoformat(q["date"]) if q.get("date") else datetime.now(zone).date()
        except ValueError:
            raise Denied(400, "date: YYYY-MM-DD") from None
        since = datetime.combine(day, dt_time(0), tzinfo=zone)
        until = since + timedelta(days=1)
        sl = self.deps.settings.sl_seconds
        store = self.deps.store
        hours = kpis.hourly_kpis(store, prefecture=pref, since=since, until=until,
                                 zone=str(zone), sl_seconds=sl)
        total = kpis.prefecture_kpis(store, since=since, until=until, sl_seconds=sl).get(
            pref, kpis.Kpis(0, 0, 0, 0, None))
        sla = {p: d.total_seconds() / 3600 for p, d in labels.SLA.items()}
        return seen, {"prefecture": pref, "day": day, "hours": hours, "total": total,
                      "orders": kpis.order_day(store, prefecture=pref, since=since,
                                               until=until, sla_hours=sla),
                      "prefectures": self.deps.inventory.prefectures, "sl_seconds": sl}

    def report(self, request: Request) -> Response:
        seen, r = self._report(request)
        return self.render("report.html", seen.lang, seen=seen, r=r)

    def report_csv(self, request: Request) -> Response:
        _, r = self._report(request)
        buf = io.StringIO()
        out = csv.writer(buf, lineterminator="\r\n")
        out.writerow(["prefecture", "date", "hour", "offered", "answered", "abandoned",
                      f"answered_within_{r['sl_seconds']}s", "service_level", "asa_s",
                      "abandon_rate"])

        def row(hour: str, k: kpis.Kpis) -> list[object]:
            return [r["prefecture"], r["day"].isoformat(), hour, k.offered, k.answered,
                    k.abandoned, k.answered_in_sl, _ratio(k.service_level),
                    "" if k.asa_s is None else f"{k.asa_s:.1f}", _ratio(k.abandon_rate)]

        for hour, k in r["hours"]:
            out.writerow(row(f"{hour:02d}", k))
        out.writerow(row("total", r["total"]))
        o = r["orders"]
        out.writerow([])
        out.writerow(["orders_opened", "orders_closed", "orders_overdue"])
        out.writerow([o.opened, o.closed, o.overdue])
        name = f"pbxctl-daily-{r['prefecture']}-{r['day'].isoformat()}.csv"
        return Response(buf.getvalue(), media_type="text/csv; charset=utf-8",
                        headers={**SECURITY_HEADERS,
                                 "Content-Disposition": f'attachment; filename="{name}"'})

    def wallboard(self, request: Request) -> Response:
        seen = self._supervisor(request)
        return self.render("wallboard.html", seen.lang, seen=seen, b=self._board())

    def wallboard_board(self, request: Request) -> Response:
        seen = self._supervisor(request)
        board = self._board()
        resp = self.render("_board.html", seen.lang, seen=seen, b=board)
        # The same board the event stream pushes, for a client without the stream; its time
        # in a header, as the stream sends it beside the HTML.
        resp.headers["X-Board-At"] = Clock(self.deps.zone, seen.lang).time(board["at"])
        return resp

    async def wallboard_events(self, request: Request) -> Response:
        seen = await run_in_threadpool(self._supervisor, request)
        return _event_response(self._tick_stream(request, seen))

    async def _tick_stream(self, request: Request, seen: Seen) -> AsyncIterator[str]:
        """The board itself, pushed when it changed (one snapshot and one rendering per
        language for every open wallboard; only the viewer's CSRF token is put in)."""
        q: asyncio.Queue[int] = asyncio.Queue(maxsize=1)

        def board(_: object = None) -> str:
            html = self._board_html.get(seen.lang)
            if html is None:
                return ""
            return "event: board\ndata: " + json.dumps(
                {"at": self._board_at.get(seen.lang, ""),
                 "html": html.replace(CSRF_SLOT, seen.csrf)}) + "\n\n"

        self._board_subs.add(q)
        self._board_wake.set()
        try:
            async for chunk in self._event_stream(request, q.get, board,
                                                  first="event: ready\ndata: {}\n\n" + board()):
                yield chunk
        finally:
            self._board_subs.discard(q)

    async def board_loop(self) -> None:
        """While any wallboard is open: a snapshot every ``wallboard_every_s``, rendered once
        per language; open boards are woken only when it changed."""
        every = self.deps.settings.wallboard_every_s
        while True:
            if not self._board_subs:
                self._board_wake.clear()
                await self._board_wake.wait()
            started = time.monotonic()
            try:
                html, at = await run_in_threadpool(self._render_board)
            except (StoreUnavailable, PbxctlError) as exc:
                log.warning("wallboard snapshot failed: %s", exc)
                html, at = None, {}
            if html is not None and html != self._board_html:
                self._board_html, self._board_at = html, at
                self._board_version += 1
                for q in list(self._board_subs):
                    if q.empty():
                        q.put_nowait(self._board_version)
            # The period between snapshots, not a wait for an outcome.
            await asyncio.sleep(max(0.0, every - (time.monotonic() - started)))

    def _render_board(self) -> tuple[dict[str, str], dict[str, str]]:
        board = self._compute_board()
        self._board_cache = (time.monotonic(), board)
        html, at = {}, {}
        for lang in LANGS:
            ctx = {"b": board, "seen": Seen(_BOARD_VIEWER, CSRF_SLOT, lang)}
            html[lang] = self.deps.envs[lang].get_template("_board.html").render(
                L=labels, clock=Clock(self.deps.zone, lang), lang=lang, langs=LANGS, **ctx)
            at[lang] = Clock(self.deps.zone, lang).time(board["at"])
        return html, at


# A watcher reports every 5 s (and on each change): older than this, the province has not
# heard from that gateway — the wallboard says so rather than show a state it cannot know.
STATE_STALE_S = 15.0

# The board is rendered once for every supervisor: this stands in for the viewer (the board
# shows the spy buttons to supervisors only, and every viewer of the stream is one) and the
# slot is replaced by each viewer's own CSRF token.
CSRF_SLOT = "@@csrf@@"
_BOARD_VIEWER = Principal("", "", "supervisor")


def _event_response(stream: AsyncIterator[str]) -> Response:
    """An event stream as every live page gets it (no proxy buffering, no caching)."""
    return StreamingResponse(stream, media_type="text/event-stream",
                             headers={**SECURITY_HEADERS, "X-Accel-Buffering": "no"})


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


async def _next(get: Awaitable[T], stopping: asyncio.Event, timeout: float
                ) -> tuple[str, T | None]:
    """The next item of a stream's queue: ("item", value), ("timeout", None) after
    ``timeout`` seconds, or ("stop", None) once the server is stopping."""
    getter = asyncio.ensure_future(get)
    stopper = asyncio.ensure_future(stopping.wait())
    try:
        done, _ = await asyncio.wait({getter, stopper}, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (getter, stopper):
            if not task.done():
                task.cancel()
    if getter in done:
        return "item", getter.result()
    return ("stop", None) if stopper in done else ("timeout", None)


def _guard(console: Console, handler: Any, *, form: bool) -> Any:
    """Runs a handler — a coroutine as it is, a plain function in the thread pool (where the
    synchronous store is at home), with the parsed form when ``form`` — and turns Denied and
    StoreUnavailable into one clear page; nothing else is caught here."""
    async def endpoint(request: Request) -> Response:
        lang = _lang_of(request)
        try:
            if asyncio.iscoroutinefunction(handler):
                result: Response = await handler(request)
            elif form:
                result = await run_in_threadpool(handler, request, await request.form())
            else:
                result = await run_in_threadpool(handler, request)
            return result
        except Denied as denied:
            return console.error(request, denied, lang)
        except StoreUnavailable as exc:
            log.warning("database unavailable: %s", exc)
            return console.error(request, Denied(503, "the database is not reachable just "
                                                      "now; try again shortly"), lang)
    return endpoint


def create_app(deps: ConsoleDeps) -> Starlette:
    c = Console(deps)

    def route(path: str, handler: Any) -> Route:
        return Route(path, _guard(c, handler, form=False), methods=["GET"])

    def post(path: str, handler: Any) -> Route:
        return Route(path, _guard(c, handler, form=True), methods=["POST"])

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(deps.feed.run(), name="order-feed"),
                 asyncio.create_task(c.board_loop(), name="wallboard")]
        if deps.calls is not None:
            tasks.append(asyncio.create_task(deps.calls.run(), name="call-feed"))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    static = Path(__file__).parent / "static"
    return Starlette(routes=[
        route("/", c.home),
        route("/login", c.login_page),
        post("/login", c.login),
        post("/logout", c.logout),
        post("/lang", c.set_lang),
        route("/agent", c.agent_page),
        route("/agent/events", c.agent_events),
        route("/agent/pop/{linkedid:str}", c.agent_pop),
        post("/agent/orders", c.agent_order),
        post("/agent/state", c.agent_state),
        route("/wallboard", c.wallboard),
        route("/wallboard/board", c.wallboard_board),
        route("/wallboard/events", c.wallboard_events),
        post("/wallboard/spy", c.spy),
        route("/reports/daily", c.report),
        route("/reports/daily.csv", c.report_csv),
        route("/inbox", c.inbox),
        route("/inbox/rows", c.inbox_rows),
        route("/inbox/events", c.events),
        route("/orders/{order_id:int}", c.order_page),
        route("/orders/{order_id:int}/row", c.order_row),
        route("/orders/{order_id:int}/recording", c.recording),
        post("/orders/{order_id:int}/{action:str}", c.act),
        Mount("/static", StaticFiles(directory=static), name="static"),
    ], lifespan=lifespan)
