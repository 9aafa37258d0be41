// Reception desk: a procedure QR → what the citizen needs, then a pager card (staff pick the priority).
"use strict";
(function () {
  const $ = Edge.$;
  let current = null;
  const pick = (obj, ...keys) => { for (const k of keys) if (obj && obj[k] !== undefined && obj[k] !== null) return obj[k]; return ""; };

  $("scan-form").addEventListener("submit", async ev => {
    ev.preventDefault();
    $("scan-error").textContent = "";
    $("procedure").hidden = true; $("ticket").hidden = true;
    const r = await Edge.post("/api/reception/scan", { text: $("scan").value });
    if (!r.ok) { $("scan-error").textContent = Edge.t(r.error || "reception.not_found"); return; }
    current = r.procedure;
    $("proc-name").textContent = pick(current, "name", "title");
    $("proc-code").textContent = pick(current, "code") || r.code;
    const papers = $("proc-papers"); papers.textContent = "";
    for (const p of [].concat(pick(current, "papers", "documents") || [])) papers.append(Edge.el("li", {}, String(p)));
    $("proc-fee").textContent = pick(current, "fee", "fee_text");
    $("proc-time").textContent = pick(current, "processing_time", "time", "duration");
    $("proc-service").textContent = pick(current, "service", "pager_service", "queue");
    const sel = $("priority"); sel.textContent = "";
    sel.append(Edge.el("option", { value: "" }, Edge.t("reception.priority_none")));
    for (const p of r.priorities || []) sel.append(Edge.el("option", { value: p }, p));
    $("procedure").hidden = false;
    $("scan").value = "";
  });

  $("issue").addEventListener("click", async () => {
    const r = await Edge.post("/api/reception/issue", {
      service: String(pick(current, "service", "pager_service", "queue")), priority: $("priority").value || null });
    if (!r.ok) { $("scan-error").textContent = Edge.t("common.error", { error: r.error }); return; }
    $("ticket-card").textContent = Edge.t("reception.take_card", { card: r.card });
    $("ticket-number").textContent = Edge.t("reception.ticket", { ticket: r.ticket });
    $("ticket").hidden = false; $("procedure").hidden = true;
  });

  $("lang").addEventListener("click", () => Edge.loadStrings(Edge.lang === "vi" ? "en" : "vi"));
  Edge.loadStrings("").then(() => { $("scan").focus(); document.body.dataset.ready = "1"; });
})();
