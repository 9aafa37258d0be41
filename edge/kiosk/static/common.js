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
    const r = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" },
                                  body: JSON.stringify(body || {}) });
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
  // A server-sent event stream that reconnects by itself (EventSource does) and hands JSON over.
  stream(path, onData) {
    const source = new EventSource(path);
    source.onmessage = ev => { try { onData(JSON.parse(ev.data)); } catch (e) { console.error(e); } };
    return source;
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

document.addEventListener("DOMContentLoaded", () => {
  if (document.body.dataset.staff === "1") Edge.staffBar().catch(e => console.error(e));
});
