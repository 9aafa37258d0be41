// Shared by every screen: strings in the chosen language, JSON calls, server-sent events.
"use strict";
const Edge = {
  lang: "vi",
  strings: {},
  async loadStrings(lang) {
    const r = await fetch("/api/i18n?lang=" + encodeURIComponent(lang || ""));
    Edge.strings = await r.json();
    Edge.lang = lang || "vi";
    document.documentElement.lang = Edge.lang;
    document.querySelectorAll("[data-t]").forEach(el => { el.textContent = Edge.t(el.dataset.t); });
    document.querySelectorAll("[data-tp]").forEach(el => { el.placeholder = Edge.t(el.dataset.tp); });
  },
  t(key, params) {
    let text = Edge.strings[key] || key;
    for (const [name, value] of Object.entries(params || {})) {
      text = text.split("{" + name + "}").join(value === null || value === undefined ? "" : String(value));
    }
    return text;
  },
  async post(path, body) {
    let r;
    try {
      r = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" },
                              body: JSON.stringify(body || {}) });
    } catch (e) {  // the device did not answer: say so (the banner follows) instead of a silent button
      Edge.conn.check();
      return { ok: false, error: "offline", code: "offline", httpStatus: 0 };
    }
    let data = {};
    try { data = await r.json(); } catch (e) { data = { ok: false, error: "HTTP " + r.status }; }
    data.httpStatus = r.status;
    if (r.status === 401 && data.login) Edge.toLogin();  // the staff session ended (expired, logged out)
    return data;
  },
  async get(path) {
    const r = await fetch(path);
    return r.json();
  },
  // A server-sent event stream that reconnects by itself and hands JSON over. EventSource retries a
  // dropped connection, but gives up for good on an error answer (a restarting server): then the
  // stream is opened again when the connection watch sees the device back.
  stream(path, onData) {
    const holder = { source: null };
    const open = () => {
      holder.source = new EventSource(path);
      holder.source.onmessage = ev => { try { onData(JSON.parse(ev.data)); } catch (e) { console.error(e); } };
      holder.source.onerror = () => Edge.conn.check();
    };
    open();
    Edge.conn.onBack(() => { if (holder.source.readyState === EventSource.CLOSED) open(); });
    return holder;
  },
  // An API refusal as a sentence for people (edge.kiosk.messages gives `code`; a few answers carry
  // an i18n key as `error`). Never the raw developer text: an unknown one reads "could not be done".
  errorText(r) {
    if (r && r.code && Edge.strings["err." + r.code]) return Edge.t("err." + r.code, r.params);
    if (r && r.error && Edge.strings[r.error]) return Edge.t(r.error, Object.assign({ minutes: r.minutes }, r.params));
    return Edge.t("err.unknown");
  },
  // Show the refusal next to the field it concerns (an input or select with id r.field inside
  // `scope`), else in `fallback`. Returns the element that shows it.
  showError(r, fallback, scope) {
    Edge.clearErrors(scope);
    const text = Edge.errorText(r);
    const field = r && r.field ? (scope || document).querySelector("#" + CSS.escape(r.field)) : null;
    if (field && /^(INPUT|SELECT|TEXTAREA)$/.test(field.tagName)) {
      const note = Edge.el("p", { class: "field-error", role: "alert", id: field.id + "-error" }, text);
      field.setAttribute("aria-invalid", "true");
      field.insertAdjacentElement("afterend", note);
      if (fallback) fallback.textContent = "";
      return note;
    }
    if (fallback) { fallback.textContent = text; fallback.className = "notice error"; }
    return fallback;
  },
  clearErrors(scope) {
    (scope || document).querySelectorAll(".field-error").forEach(n => n.remove());
    (scope || document).querySelectorAll("[aria-invalid]").forEach(n => n.removeAttribute("aria-invalid"));
  },
  toLogin() { location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search); },
  // Staff screens (body data-staff="1"): who is logged in, and a logout button, in the header.
  async staffBar() {
    const me = await (await fetch("/api/staff/me")).json();
    const header = document.querySelector("header");
    if (!me.staff || !header) return;
    const who = Edge.el("span", { class: "hint", id: "staff-who" }, me.staff);
    const out = Edge.el("button", { class: "small secondary", id: "logout", "data-t": "staff.logout" },
                        Edge.t("staff.logout"));
    out.addEventListener("click", async () => { await Edge.post("/api/staff/logout"); Edge.toLogin(); });
    header.append(who, out);
  },
  $(id) { return document.getElementById(id); },
  el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c === null || c === undefined ? "" : c);
    return node;
  },
};

// Connection watch: every screen polls /api/ping; when the device stops answering, a banner says
// "Mất kết nối – đang thử lại" within 5 s (a ping every 1.5 s, each given 2 s), the page's controls
// are disabled and its stale content dimmed; when the device answers again all of it comes back by
// itself and the page's onBack hooks run (streams reopen, pages refresh).
Edge.conn = {
  PING_EVERY_MS: 1500,
  PING_TIMEOUT_MS: 2000,
  online: true,
  hooks: [],
  busy: false,
  onBack(fn) { Edge.conn.hooks.push(fn); },
  async check() {
    if (Edge.conn.busy) return;
    Edge.conn.busy = true;
    let ok = false;
    try {
      const ctl = new AbortController();
      const timer = setTimeout(() => ctl.abort(), Edge.conn.PING_TIMEOUT_MS);
      const r = await fetch("/api/ping", { cache: "no-store", signal: ctl.signal });
      clearTimeout(timer);
      ok = r.ok;
    } catch (e) { ok = false; }
    Edge.conn.busy = false;
    Edge.conn.set(ok);
  },
  set(ok) {
    if (ok === Edge.conn.online) return;
    Edge.conn.online = ok;
    document.body.dataset.conn = ok ? "ok" : "lost";
    Edge.conn.banner().hidden = ok;
    if (!ok) {
      document.querySelectorAll("button:not(:disabled), input:not(:disabled), select:not(:disabled), textarea:not(:disabled)")
        .forEach(n => { n.disabled = true; n.dataset.connDisabled = "1"; });
    } else {
      document.querySelectorAll("[data-conn-disabled]").forEach(n => { n.disabled = false; delete n.dataset.connDisabled; });
      for (const fn of Edge.conn.hooks) { try { fn(); } catch (e) { console.error(e); } }
    }
  },
  banner() {
    let b = document.getElementById("conn-banner");
    if (!b) {
      b = Edge.el("div", { id: "conn-banner", class: "conn-banner", role: "alert", "data-t": "conn.lost" });
      b.hidden = true;
      document.body.prepend(b);
    }
    // The strings may never have loaded (the device was already gone): the Vietnamese text is built in.
    b.textContent = Edge.strings["conn.lost"] || "Mất kết nối – đang thử lại";
    return b;
  },
  start() {
    document.body.dataset.conn = "ok";
    setInterval(Edge.conn.check, Edge.conn.PING_EVERY_MS);
  },
};

document.addEventListener("DOMContentLoaded", () => {
  Edge.conn.start();
  if (document.body.dataset.staff === "1") Edge.staffBar().catch(e => console.error(e));
});
