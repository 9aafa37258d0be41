// The pickup kiosk: the server owns the journey; this page shows its current step and sends input.
"use strict";

// The dossier code as it is typed on the keypad: separators are added where the receipt format
// (000.00.01.H29-261207-0001, shortened forms like 38.98.H29-210519-0013) puts them, and
// typed ones are kept. Pure, so the whole rule is in one place.
function formatCode(value, key) {
  let v = String(value || "").toUpperCase().replace(/[^0-9A-Z.\-]/g, "");
  if (key === "⌫") return v.slice(0, -1);
  const parts = v.split("-");
  const seg = parts.length - 1;  // 0: agency id, 1: date YYMMDD, 2: running number
  const cur = parts[seg];
  const last = v.slice(-1);
  if (key === "." || key === "-") {
    if (!cur || last === "." || last === "-") return v;  // nothing to separate yet, or already separated
    if (key === "." && seg > 0) return v;
    if (key === "-" && seg >= 2) return v;
    return v + key;
  }
  if (v.length >= 40) return v;
  if (seg > 0 && !/^[0-9]$/.test(key)) return v;  // the date and the number are digits
  if (cur.length >= 6 && seg > 0) return v;
  v += key;
  const now = v.split("-");
  const group = now[now.length - 1];
  if (now.length === 1) {
    const groups = group.split(".");
    const g = groups.length - 1, part = groups[g];
    if (g >= 1 && /^[A-Z][0-9]{2}$/.test(part)) v += "-";  // the sector+province id (H29) ends the agency id
    else if (g === 0 && part.length === 3) v += ".";
    else if ((g === 1 || g === 2) && /^[0-9]{2}$/.test(part)) v += ".";
  } else if (now.length === 2 && group.length === 6) {
    v += "-";
  }
  return v;
}

(function () {
  const $ = Edge.$;
  const TOUCH_EVERY_MS = 5000;  // keypad presses keep the session alive, at most this often
  const CAMERA_EVERY_MS = 250;
  let view = { step: "start", version: -1 };
  let layout = [];
  let busy = false;
  let seen = { session: null, step: null, refusals: 0, prefill: null };
  let deadline = null, budget = null, lastTouch = 0, cameraTimer = null, cameraUrl = null;
  let offered = false;  // the field holds a scanned code nobody has typed over yet

  function show(step) {
    document.querySelectorAll(".step").forEach(s => s.classList.toggle("active", s.id === "step-" + step));
    document.body.dataset.step = step;
  }

  function render(v) {
    // An older answer that arrived late is ignored; a restarted service (new epoch) starts again from 0.
    if (v.epoch === view.epoch && v.version !== undefined && v.version < view.version) return;
    const langChanged = v.lang && v.lang !== Edge.lang;
    view = v;
    if (langChanged) { Edge.loadStrings(v.lang).then(() => render(view)); return; }
    // A new session, a new step or a refusal: the field is emptied and focused again, so the next
    // try never starts with the digits of the refused one.
    const fresh = v.session !== seen.session || v.step !== seen.step || (v.refusals || 0) !== seen.refusals;
    seen = { ...seen, session: v.session, step: v.step, refusals: v.refusals || 0 };
    show(v.step);
    startCountdown(v);
    camera(v.step === "face");
    const notice = v.notice ? Edge.t(v.notice, v.params) : "";
    if (v.step === "code") {
      $("code-notice").textContent = notice;
      if (fresh) { $("code").value = ""; seen.prefill = null; offered = false; }
      offerScan(v.prefill);
      $("code").focus();
    } else if (v.step === "face") {
      const c = v.challenge;
      const prompt = c ? (c[Edge.lang] || c.vi || Edge.t("challenge." + c.key)) : "";
      $("challenge").textContent = prompt;  // the vision service words it for the citizen ("Ông/Bà vui lòng …")
      $("guidance").textContent = Edge.t(v.guidance || "kiosk.face_checking");
      $("face-notice").textContent = notice;
    } else if (v.step === "pin") {
      $("pin-notice").textContent = notice;
      if (fresh) $("pin").value = "";
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

  // A code the camera read fills an empty field; over something typed it waits behind a button.
  function offerScan(code) {
    const field = $("code");
    if (code && code !== seen.prefill && (!field.value || field.value === seen.prefill)) {
      field.value = code;
      offered = true;
    }
    if (code) seen.prefill = code;
    $("use-scan").hidden = !code || field.value === code;
  }

  function startCountdown(v) {
    const known = typeof v.seconds_left === "number";
    deadline = known ? performance.now() + v.seconds_left * 1000 : null;
    budget = known ? (v.step_seconds || v.seconds_left || 1) : null;
    tickCountdown();
  }

  function tickCountdown() {
    const text = $("countdown"), bar = $("countdown-bar");
    if (deadline === null) {
      text.textContent = "";
      bar.firstElementChild.style.width = "0";
      return;
    }
    const left = Math.max(0, Math.ceil((deadline - performance.now()) / 1000));
    const key = (view.step === "message" || view.step === "thanks") ? "kiosk.back_in" : "kiosk.seconds_left";
    text.textContent = Edge.t(key, { s: left });
    const soon = left <= 15 && key === "kiosk.seconds_left";
    text.classList.toggle("soon", soon);
    bar.classList.toggle("soon", soon);
    bar.firstElementChild.style.width = Math.min(100, 100 * left / budget) + "%";
  }

  // The live picture at the face step only: the server answers 204 at any other step.
  function camera(on) {
    if (on && cameraTimer === null) {
      cameraTimer = setInterval(refreshCamera, CAMERA_EVERY_MS);
      refreshCamera();
    } else if (!on && cameraTimer !== null) {
      clearInterval(cameraTimer);
      cameraTimer = null;
      $("camera").removeAttribute("src");
      $("camera-wait").hidden = false;
      if (cameraUrl) { URL.revokeObjectURL(cameraUrl); cameraUrl = null; }
    }
  }

  async function refreshCamera() {
    try {
      const r = await fetch("/api/kiosk/camera.jpg", { cache: "no-store" });
      if (r.status !== 200 || cameraTimer === null) return;
      const url = URL.createObjectURL(await r.blob());
      $("camera").src = url;
      $("camera-wait").hidden = true;
      if (cameraUrl) URL.revokeObjectURL(cameraUrl);
      cameraUrl = url;
    } catch (e) { /* the next tick tries again */ }
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

  // Typing on the keypad is activity: tell the server now and then so the session does not time out.
  function stillHere() {
    const now = Date.now();
    if (now - lastTouch < TOUCH_EVERY_MS || !view.session) return;
    lastTouch = now;
    Edge.post("/api/kiosk/touch", { session: view.session }).then(v => { if (v.step) render(v); });
  }

  function buildCodepad() {
    const rows = ["1234567890", "ABCDEFGHIJ", "KLMNOPQRST", "UVWXYZ.-"];
    for (const row of rows) {
      for (const key of row) {
        const sep = key === "." || key === "-";
        $("codepad").append(Edge.el("button", { type: "button", "data-key": key, class: sep ? "sep" : "",
                                                onclick: () => codeKey(key) }, key));
      }
    }
    $("codepad").append(Edge.el("button", { type: "button", "data-key": "⌫", class: "del",
                                            onclick: () => codeKey("⌫") }, "⌫"));
    $("codepad").append(Edge.el("button", { type: "button", "data-key": "clear", class: "del",
                                            "data-t": "kiosk.key_clear", onclick: () => codeKey("clear") },
                                Edge.t("kiosk.key_clear")));
  }

  function codeKey(key) {
    const field = $("code");
    // Typing over a code the camera offered starts a fresh code: nobody has to delete 25 characters.
    if (offered || key === "clear") field.value = "";
    offered = false;
    if (key !== "clear") field.value = formatCode(field.value, key);
    $("use-scan").hidden = !seen.prefill || field.value === seen.prefill;
    field.focus();
    stillHere();
  }

  function buildPinpad() {
    for (const key of ["1", "2", "3", "4", "5", "6", "7", "8", "9", "⌫", "0", "✓"]) {
      $("keypad").append(Edge.el("button", { type: "button", "data-key": key, onclick: () => {
        const pin = $("pin");
        if (key === "⌫") pin.value = pin.value.slice(0, -1);
        else if (key === "✓") { $("pin-form").requestSubmit(); return; }
        else if (pin.value.length < 12) pin.value += key;
        stillHere();
      } }, key));
    }
  }

  $("start").addEventListener("click", () => act("/api/kiosk/start"));
  $("code-form").addEventListener("submit", ev => {
    ev.preventDefault();
    act("/api/kiosk/code", { session: view.session, code: $("code").value });
  });
  $("use-scan").addEventListener("click", () => {
    $("code").value = seen.prefill || "";
    offered = true;
    $("use-scan").hidden = true;
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
  buildCodepad();
  buildPinpad();
  setInterval(tickCountdown, 250);

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
