// Wall display for the hall: the newest call large and highlighted (chime, then the Vietnamese voice
// call rendered on the device by espeak-ng), the last calls by counter, and the wait per service.
"use strict";
(function () {
  const $ = Edge.$;
  const HISTORY = 4;           // rows under "Vừa gọi" (each number ≥ 12 % of the screen height)
  let highlightS = 8;          // [kiosk] display_highlight_s, from /api/screens
  let voiceOn = true;          // [kiosk] display_voice
  let calls = [];              // newest first: {ticket, counter, at}
  let seen = null;             // counter -> ticket on screen; null before the first view
  let lastView = {};
  let highlightTimer = null;
  let audio = null;            // one AudioContext for the chime (created on first use)
  let speaking = Promise.resolve();

  // -- what changed: a counter showing a new ticket is a new call -----------------------------------
  function newCalls(view) {
    const found = [];
    for (const [counter, c] of Object.entries(view.counters || {})) {
      if (c.ticket && (!seen || seen[counter] !== c.ticket)) found.push({ ticket: c.ticket, counter, at: c.called_at || 0 });
    }
    seen = Object.fromEntries(Object.entries(view.counters || {}).map(([k, c]) => [k, c.ticket]));
    return found.sort((a, b) => a.at - b.at);  // oldest first, so the newest ends on top
  }

  let recallId = null;         // the pager's last ticket_recalled event already shown
  function recalls(view, first) {  // a recall: the same number again, on top, highlighted and said again
    const r = view.recalled;
    if (!r || r.id === recallId) return [];
    recallId = r.id;
    return first || !r.ticket ? [] : [{ ticket: r.ticket, counter: String(r.counter), at: Date.now() / 1000 }];
  }

  function render(view) {
    lastView = view;
    const first = seen === null;
    const fresh = newCalls(view).concat(recalls(view, first));
    for (const call of fresh) calls = [call].concat(calls.filter(c => c.ticket !== call.ticket)).slice(0, 12);
    if (!first && fresh.length) {
      highlight();
      for (const call of fresh) announce(call);
    }
    draw();
    drawWaits(view);
  }

  function draw() {
    const latest = calls[0];
    $("latest-ticket").textContent = latest ? latest.ticket : "—";
    $("latest-counter").textContent = latest ? latest.counter : "";
    $("latest").querySelector(".latest-counter").hidden = !latest;
    $("latest").querySelector(".latest-label").textContent = Edge.t(latest ? "display.latest" : "display.none_yet");
    const body = $("history"); body.textContent = "";
    if (calls.length < 2) body.append(Edge.el("tr", {}, Edge.el("td", { class: "none" }, Edge.t("display.none_recent"))));
    for (const call of calls.slice(1, 1 + HISTORY)) {
      body.append(Edge.el("tr", {}, Edge.el("td", { class: "num" }, call.ticket),
                          Edge.el("td", { class: "arrow" }, "→"), Edge.el("td", { class: "num counter" }, call.counter)));
    }
  }

  function highlight() {
    const box = $("latest");
    box.classList.remove("fresh"); void box.offsetWidth;  // restart the animation for a call right after another
    box.classList.add("fresh");
    document.body.dataset.highlight = calls[0].ticket;
    clearTimeout(highlightTimer);
    highlightTimer = setTimeout(() => { box.classList.remove("fresh"); delete document.body.dataset.highlight; }, highlightS * 1000);
  }

  // -- waits: honest, never "0 minutes" while people wait -------------------------------------------
  function waitText(s) {
    if (!s.waiting) return Edge.t("display.nobody");
    const people = Edge.t("display.people", { n: s.waiting });
    if (s.open_counters === 0) return people + " · " + Edge.t("display.no_counter");
    const minutes = Math.ceil((s.estimated_wait_s || 0) / 60);
    let about;
    if ((s.estimated_wait_s || 0) < 60) about = Edge.t("display.under_min");
    else if (minutes >= 60) about = Edge.t("display.about_hours", { hours: Math.floor(minutes / 60), minutes: minutes % 60 });
    else about = Edge.t("display.about_min", { minutes });
    return people + " · " + about;
  }

  function drawWaits(view) {
    const box = $("waits"); box.textContent = "";
    for (const [sid, s] of Object.entries(view.services || {})) {
      const name = (Edge.lang === "en" && s.name_en) || s.name || sid;
      box.append(Edge.el("div", { class: "wait", "data-service": sid },
                         Edge.el("strong", {}, (s.prefix ? s.prefix + " · " : "") + name), Edge.el("span", {}, waitText(s))));
    }
  }

  // -- sound: a two-tone chime (Web Audio, no file), then the voice call -----------------------------
  function audioContext() {
    if (!audio) audio = new (window.AudioContext || window.webkitAudioContext)();
    $("sound").hidden = audio.state !== "suspended";  // the browser blocked sound until someone touches the screen
    return audio;
  }

  function chime() {
    const ctx = audioContext();
    const now = ctx.currentTime;
    [[880, 0], [660, 0.45]].forEach(([freq, delay]) => {
      const osc = ctx.createOscillator(), gain = ctx.createGain();
      osc.frequency.value = freq; osc.type = "sine";
      gain.gain.setValueAtTime(0.0001, now + delay);
      gain.gain.exponentialRampToValueAtTime(0.5, now + delay + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + delay + 0.9);
      osc.connect(gain).connect(ctx.destination);
      osc.start(now + delay); osc.stop(now + delay + 1);
    });
    document.body.dataset.chimes = String(Number(document.body.dataset.chimes || 0) + 1);
  }

  function say(call) {
    if (!voiceOn) return Promise.resolve();
    const url = "/api/display/voice?ticket=" + encodeURIComponent(call.ticket) + "&counter=" + encodeURIComponent(call.counter);
    return new Promise(resolve => {
      const voice = new Audio(url);
      voice.onended = voice.onerror = resolve;
      voice.play().catch(resolve);  // blocked or no espeak-ng: the chime and the highlight still tell
      setTimeout(resolve, 8000);
    });
  }

  function announce(call) {  // one call after the other, never two voices at once
    speaking = speaking.then(() => { chime(); return new Promise(r => setTimeout(r, 1300)); }).then(() => say(call));
  }

  $("sound").addEventListener("click", () => { audioContext().resume().then(() => { $("sound").hidden = true; }); });
  // The office's time (its UTC offset from /api/ping: [pager] utc_offset_h), not the machine's zone,
  // which is often UTC on a device: the hall and the dashboard read the same hour.
  let officeOffsetH = null;
  function officeTime() {
    if (officeOffsetH === null) return new Date().toLocaleTimeString("vi-VN", { hour: "2-digit", minute: "2-digit" });
    const local = new Date(Date.now() + officeOffsetH * 3600 * 1000);
    return String(local.getUTCHours()).padStart(2, "0") + ":" + String(local.getUTCMinutes()).padStart(2, "0");
  }
  function tick() { $("clock").textContent = officeTime(); }
  fetch("/api/ping").then(r => r.json()).then(p => {
    if (typeof p.utc_offset_h === "number") { officeOffsetH = p.utc_offset_h; tick(); }
    document.body.dataset.clock = officeOffsetH === null ? "machine" : "office";
  }).catch(() => {});
  tick(); setInterval(tick, 1000);
  Edge.conn.onBack(() => Edge.get("/api/pager").then(render).catch(() => {}));
  Promise.all([Edge.loadStrings(""), Edge.get("/api/screens").catch(() => ({}))]).then(([, cfg]) => {
    if (cfg.highlight_s) highlightS = cfg.highlight_s;
    voiceOn = cfg.voice !== "off";
    Edge.stream("/api/pager/events", render);
    document.body.dataset.ready = "1";
  });
})();
