// Live inbox: the server says which order changed (or that the list must be reloaded); the
// rows come from scope-checked requests, as HTML rendered (and escaped) by the server.
"use strict";

// The live/not-live line every live page shows (its words come translated from the page).
function liveIndicator(body, state) {
  return function live(on) {
    body.dataset.live = on ? "1" : "0";
    state.textContent = on ? (state.dataset.on || "●") : (state.dataset.off || "○");
    state.className = on ? "live on" : "live off";
  };
}
(function () {
  // The agent's screen: a pop names a call on this agent's phone; its panel (customer, bills,
  // outages, open orders, the work-order form) is rendered by the server.
  const body = document.body;
  if (body.dataset.page !== "agent") return;
  const pop = document.getElementById("pop");
  const state = document.getElementById("live-state");
  const live = liveIndicator(body, state);
  const es = new EventSource("/agent/events");
  es.addEventListener("ready", () => live(true));
  es.addEventListener("unavailable", () => live(false));
  es.addEventListener("signout", () => { es.close(); location.href = "/login"; });
  es.addEventListener("pop", async (e) => {
    const id = JSON.parse(e.data).linkedid;
    const r = await fetch("/agent/pop/" + encodeURIComponent(id),
                          {credentials: "same-origin", headers: {"Accept": "text/html"}});
    if (!r.ok) return;
    const t = document.createElement("template");
    t.innerHTML = await r.text();  // server-rendered, autoescaped
    pop.replaceChildren(t.content);
    body.dataset.popped = id;
  });
  es.onerror = () => live(false);
})();

(function () {
  const body = document.body;
  if (body.dataset.page !== "inbox") return;
  const rows = document.getElementById("order-rows");
  const state = document.getElementById("live-state");

  function fragment(html) {
    const t = document.createElement("template");
    t.innerHTML = html;  // server-rendered, autoescaped; CSP forbids inline script anyway
    return t.content;
  }
  async function fetchText(url) {
    const r = await fetch(url, {credentials: "same-origin", headers: {"Accept": "text/html"}});
    if (r.status === 401) { location.href = "/login"; return null; }
    return r.ok ? r.text() : null;
  }
  async function reloadAll() {
    const html = await fetchText("/inbox/rows");
    if (html !== null) rows.replaceChildren(fragment(html));
  }
  async function reloadOne(id) {
    const html = await fetchText("/orders/" + encodeURIComponent(id) + "/row");
    if (html === null) return;
    const fresh = fragment(html).querySelector("tr");
    if (!fresh) return;
    fresh.classList.add("fresh");
    const old = document.getElementById("order-" + id);
    if (old) old.replaceWith(fresh); else rows.prepend(fresh);
  }
  const live = liveIndicator(body, state);
  const es = new EventSource("/inbox/events");
  es.addEventListener("ready", () => live(true));
  es.addEventListener("resync", () => { reloadAll().then(() => live(true)); });
  es.addEventListener("order", (e) => { reloadOne(JSON.parse(e.data).id); });
  es.addEventListener("signout", () => { es.close(); location.href = "/login"; });
  es.onerror = () => live(false);
})();

(function () {
  // The wallboard: the server pushes the board (rendered once for every open wallboard)
  // whenever it changed; it is replaced only then, so no button is swapped out needlessly.
  const body = document.body;
  if (body.dataset.page !== "wallboard") return;
  const board = document.getElementById("board");
  const at = document.getElementById("board-at");
  const state = document.getElementById("live-state");
  let last = null;
  const live = liveIndicator(body, state);
  const es = new EventSource("/wallboard/events");
  es.addEventListener("ready", () => live(true));
  es.addEventListener("board", (e) => {
    const msg = JSON.parse(e.data);
    at.textContent = msg.at;
    if (msg.html !== last) {
      const t = document.createElement("template");
      t.innerHTML = msg.html;  // server-rendered, autoescaped
      board.replaceChildren(t.content);
      last = msg.html;
    }
    body.dataset.refreshed = String(Date.now());
  });
  es.addEventListener("signout", () => { es.close(); location.href = "/login"; });
  es.onerror = () => live(false);
})();

