// Counter panel: the staff's buttons for one counter (?c=ID), the queue live from the pager service.
"use strict";
(function () {
  const $ = Edge.$;
  const counter = new URLSearchParams(location.search).get("c") || "1";
  let last = {};

  async function act(action, extra) {
    const r = await Edge.post("/api/pager/" + action, Object.assign({ counter }, extra || {}));
    if (!r.ok) { $("answer").textContent = Edge.t("common.error", { error: r.error }); return; }
    const res = r.result || {};
    $("answer").textContent = res.ticket ? res.ticket + (res.card ? " · #" + res.card : "")
                                         : (action === "call_next" ? Edge.t("counter.empty") : "");
  }

  function render(view) {
    last = view;
    const mine = (view.counters || {})[counter] || {};
    $("serving").textContent = mine.ticket || "—";
    $("serving-card").textContent = mine.card ? "#" + mine.card : "";
    $("pause").textContent = Edge.t(mine.paused ? "counter.resume" : "counter.pause");
    $("pause").dataset.paused = mine.paused ? "1" : "";
    const table = $("waiting"); table.textContent = "";
    const sel = $("to-service"); const chosen = sel.value; sel.textContent = "";
    for (const [sid, s] of Object.entries(view.services || {})) {
      const name = (Edge.lang === "en" && s.name_en) || s.name || sid;
      table.append(Edge.el("tr", {}, Edge.el("td", {}, name), Edge.el("td", {}, String(s.waiting)),
                           Edge.el("td", {}, (s.next || []).join(", "))));
      sel.append(Edge.el("option", { value: sid }, name));
    }
    if (chosen) sel.value = chosen;
  }

  for (const action of ["call_next", "recall", "no_show", "done"]) $(action).addEventListener("click", () => act(action));
  $("pause").addEventListener("click", () => act("pause", { paused: !$("pause").dataset.paused }));
  $("transfer").addEventListener("click", () => act("transfer", { to_service: $("to-service").value }));
  for (let score = 1; score <= 5; score++) {
    $("rating").append(Edge.el("button", { class: "small secondary", "data-score": String(score),
                                          onclick: () => act("rate", { score }) }, "★".repeat(score)));
  }
  $("lang").addEventListener("click", () => Edge.loadStrings(Edge.lang === "vi" ? "en" : "vi").then(setTitle).then(() => render(last)));
  function setTitle() { $("title").textContent = Edge.t("counter.title", { counter }); }
  Edge.loadStrings("").then(() => {
    setTitle();
    Edge.stream("/api/pager/events", render);
    document.body.dataset.ready = "1";
  });
})();
