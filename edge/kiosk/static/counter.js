// Counter panel: the staff's buttons for one counter (?c=ID), the queue live from the pager service.
// Each press answers in words ("Đã gọi A012 (thẻ rung số 40)"); a refusal says what to do instead.
"use strict";
(function () {
  const $ = Edge.$;
  const counter = new URLSearchParams(location.search).get("c") || "1";
  let last = {};

  function serviceName(sid) {
    const s = (last.services || {})[sid] || {};
    return (Edge.lang === "en" && s.name_en) || s.name || sid || "";
  }

  // What the press did, in words (neutral colour: a no-show is an ordinary outcome, not a warning).
  function said(action, res, extra) {
    if (action === "call_next") {
      if (!res.ticket) return Edge.t("counter.empty");
      return Edge.t(res.repeated ? "counter.did.repeat" : "counter.did.call_next", res);
    }
    if (action === "pause") return Edge.t(res.paused ? "counter.did.pause" : "counter.did.resume");
    if (action === "transfer") return Edge.t("counter.did.transfer", { ticket: res.ticket, service: serviceName(extra.to_service) });
    if (action === "rate") return Edge.t("counter.did.rate", res);
    return Edge.t("counter.did." + action, res);
  }

  async function act(action, extra) {
    const r = await Edge.post("/api/pager/" + action, Object.assign({ counter }, extra || {}));
    const answer = $("answer");
    if (!r.ok) { Edge.showError(r, answer, document.querySelector("main")); return; }
    Edge.clearErrors();
    answer.className = "answer ok";
    answer.textContent = said(action, r.result || {}, extra || {});
  }

  function render(view) {
    last = view;
    const mine = (view.counters || {})[counter] || {};
    $("serving").textContent = mine.ticket || "—";
    $("serving-card").textContent = mine.card ? Edge.t("counter.card", { card: mine.card }) : "";
    $("pause").textContent = Edge.t(mine.paused ? "counter.resume" : "counter.pause");
    $("pause").dataset.paused = mine.paused ? "1" : "";
    $("paused-badge").hidden = !mine.paused;
    for (const id of ["recall", "no_show", "done", "transfer"]) {
      if (!$(id).dataset.connDisabled) $(id).disabled = !mine.ticket;  // nothing to act on: say so by greying
    }
    const table = $("waiting"); table.textContent = "";
    table.append(Edge.el("tr", {}, Edge.el("th", {}, Edge.t("counter.service")), Edge.el("th", {}, Edge.t("counter.count")),
                         Edge.el("th", {}, Edge.t("counter.upcoming"))));
    const sel = $("to-service"); const chosen = sel.value; sel.textContent = "";
    for (const [sid, s] of Object.entries(view.services || {})) {
      const name = serviceName(sid);
      table.append(Edge.el("tr", { "data-service": sid }, Edge.el("td", {}, name), Edge.el("td", {}, String(s.waiting)),
                           Edge.el("td", {}, (s.next || []).join(", ") || "—")));
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
  function setTitle() { $("title").textContent = Edge.t("counter.title", { counter }); document.title = $("title").textContent; }
  Edge.loadStrings("").then(() => {
    setTitle();
    Edge.stream("/api/pager/events", render);
    document.body.dataset.ready = "1";
  });
})();
