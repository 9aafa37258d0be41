// The dashboard's only script: keeps a page current and says when central stops answering.
// - every 2 s it asks /api/health; no answer within 1.5 s (or an answer saying the database is
//   down) shows the banner "Mất kết nối – đang thử lại" and disables the page's buttons; the
//   next good answer hides it and refreshes the page;
// - pages with data-refresh="N" on <body> reload their <main> every N s without a full reload
//   (a failed reload would replace the page with the browser's own error screen).
(function () {
  "use strict";
  var HEALTH_EVERY_MS = 2000, HEALTH_TIMEOUT_MS = 1500;
  var body = document.body, banner = document.getElementById("conn-banner");
  var refreshS = parseInt(body.getAttribute("data-refresh") || "0", 10);
  var lost = false, lastRefresh = Date.now();

  function timedFetch(url) {
    var ctrl = new AbortController();
    var timer = setTimeout(function () { ctrl.abort(); }, HEALTH_TIMEOUT_MS);
    return fetch(url, {credentials: "same-origin", cache: "no-store", signal: ctrl.signal})
      .finally(function () { clearTimeout(timer); });
  }

  function setControls(disabled) {
    document.querySelectorAll("main button, main input, main select").forEach(function (el) {
      if (disabled && !el.disabled) { el.disabled = true; el.setAttribute("data-live-disabled", "1"); }
      if (!disabled && el.getAttribute("data-live-disabled")) { el.disabled = false; el.removeAttribute("data-live-disabled"); }
    });
  }

  function setLost(now) {
    if (now === lost) return;
    lost = now;
    banner.hidden = !now;
    body.classList.toggle("conn-lost", now);
    setControls(now);
    if (!now && refreshS) refreshMain();
  }

  function busy() {
    var el = document.activeElement;
    return el && el.closest && el.closest("main form");
  }

  function refreshMain() {
    if (busy()) return;
    lastRefresh = Date.now();
    fetch(location.href, {credentials: "same-origin", cache: "no-store"}).then(function (r) {
      if (r.redirected && r.url.indexOf("/login") >= 0) { location.assign(r.url); return; }
      if (!r.ok) return;
      return r.text().then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("main"), main = document.getElementById("main");
        if (fresh && main && !lost) main.innerHTML = fresh.innerHTML;
      });
    }).catch(function () { setLost(true); });
  }

  function tick() {
    timedFetch("/api/health").then(function (r) { return r.json(); }).then(function (health) {
      setLost(health.db === false);      // central answers but cannot read its database: stale too
      if (!lost && refreshS && Date.now() - lastRefresh >= refreshS * 1000) refreshMain();
    }).catch(function () { setLost(true); });
  }

  setInterval(tick, HEALTH_EVERY_MS);
})();
