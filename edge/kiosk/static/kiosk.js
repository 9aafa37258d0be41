// The pickup kiosk: the server owns the journey; this page shows its current step and sends input.
"use strict";
(function () {
  const $ = Edge.$;
  let view = { step: "start", version: -1 };
  let layout = [];
  let busy = false;

  function show(step) {
    document.querySelectorAll(".step").forEach(s => s.classList.toggle("active", s.id === "step-" + step));
    document.body.dataset.step = step;
  }

  function render(v) {
    // An older answer that arrived late is ignored; a restarted service (new epoch) starts again from 0.
    if (v.epoch === view.epoch && v.version !== undefined && v.version < view.version) return;
    const langChanged = v.lang && v.lang !== Edge.lang;
    const stepChanged = v.step !== view.step;
    view = v;
    if (langChanged) { Edge.loadStrings(v.lang).then(() => render(view)); return; }
    show(v.step);
    const notice = v.notice ? Edge.t(v.notice, v.params) : "";
    if (v.step === "code") {
      $("code-notice").textContent = notice;
      if (stepChanged) { $("code").value = ""; }
      $("code").focus();
    } else if (v.step === "face") {
      $("guidance").textContent = Edge.t(v.guidance || "kiosk.face_checking");
      $("face-notice").textContent = notice;
    } else if (v.step === "pin") {
      $("pin-notice").textContent = notice;
      if (stepChanged) $("pin").value = "";
      $("pin").focus();
    } else if (v.step === "open") {
      $("open-title").textContent = Edge.t("kiosk.open_title", { compartment: v.compartment });
      $("open-hint").textContent = Edge.t(v.door_reminder ? "kiosk.close_reminder" : "kiosk.open_hint",
                                          { compartment: v.compartment });
      drawLocker(v.compartment);
    } else if (v.step === "message") {
      $("message").textContent = Edge.t(v.message, v.params);
    }
  }

  function drawLocker(open) {
    const box = $("locker");
    box.textContent = "";
    let ids = layout.slice();
    if (!ids.map(String).includes(String(open))) {
      const n = Math.max(12, Number(open) || 0);
      ids = Array.from({ length: n }, (_, i) => i + 1);
    }
    for (const id of ids) {
      const cell = Edge.el("div", { "data-compartment": String(id) }, String(id));
      if (String(id) === String(open)) cell.classList.add("open");
      box.append(cell);
    }
  }

  async function act(path, body) {
    if (busy) return;
    busy = true;
    document.body.classList.add("busy");
    try {
      const v = await Edge.post(path, body);
      if (v.step) render(v);
      else if (v.stale) render(await Edge.get("/api/kiosk"));
    } finally {
      busy = false;
      document.body.classList.remove("busy");
    }
  }

  $("start").addEventListener("click", () => act("/api/kiosk/start"));
  $("code-form").addEventListener("submit", ev => {
    ev.preventDefault();
    act("/api/kiosk/code", { session: view.session, code: $("code").value });
  });
  $("pin-form").addEventListener("submit", ev => {
    ev.preventDefault();
    act("/api/kiosk/pin", { session: view.session, pin: $("pin").value });
  });
  $("use-pin").addEventListener("click", () => act("/api/kiosk/use-pin", { session: view.session }));
  document.querySelectorAll(".cancel").forEach(b =>
    b.addEventListener("click", () => act("/api/kiosk/cancel", { session: view.session })));
  $("back").addEventListener("click", () => act("/api/kiosk/cancel", {}).then(() => act("/api/kiosk/start")));
  $("lang").addEventListener("click", () => act("/api/kiosk/lang", { lang: Edge.lang === "vi" ? "en" : "vi" }));
  for (const key of ["1", "2", "3", "4", "5", "6", "7", "8", "9", "⌫", "0", "✓"]) {
    $("keypad").append(Edge.el("button", { type: "button", "data-key": key, onclick: () => {
      const pin = $("pin");
      if (key === "⌫") pin.value = pin.value.slice(0, -1);
      else if (key === "✓") $("pin-form").requestSubmit();
      else if (pin.value.length < 12) pin.value += key;
    } }, key));
  }

  async function boot() {
    const first = await Edge.get("/api/kiosk");
    await Edge.loadStrings(first.lang);
    try { layout = (await Edge.get("/api/kiosk/layout")).compartments || []; } catch (e) { layout = []; }
    render(first);
    Edge.stream("/api/kiosk/events", render);
    document.body.dataset.readyMs = String(Math.round(performance.now()));  // since navigation start
    document.body.dataset.ready = "1";
  }
  boot();
})();
