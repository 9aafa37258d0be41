// Reception desk: a procedure QR (desk camera, USB scanner or typed) → what the citizen needs and the
// pager card to take; staff choose a priority class before issuing.
"use strict";
(function () {
  const $ = Edge.$;
  let current = null;
  let priorities = [];

  function processing(days) {
    if (days === null || days === undefined || days === "") return "";
    return Number(days) === 0 ? Edge.t("reception.same_day") : Edge.t("reception.days", { n: days });
  }

  function showProcedure(proc, code, prios) {
    current = proc;
    priorities = prios || priorities;
    $("ticket").hidden = true;
    $("issue-error").textContent = "";
    $("proc-name").textContent = (Edge.lang === "en" && proc.name_en) || proc.name || "";
    $("proc-code").textContent = proc.code || code || "";
    const papers = $("proc-papers"); papers.textContent = "";
    for (const p of [].concat(proc.papers || [])) papers.append(Edge.el("li", {}, String(p)));
    $("proc-fee").textContent = proc.fee || "";
    $("proc-time").textContent = processing(proc.processing_days);
    $("proc-service").textContent = proc.queue_name || proc.queue_service || "";
    const sel = $("priority"); sel.textContent = "";
    sel.append(Edge.el("option", { value: "" }, Edge.t("reception.priority_none")));
    for (const p of priorities) sel.append(Edge.el("option", { value: p }, Edge.t("priority." + p) === "priority." + p ? p : Edge.t("priority." + p)));
    $("procedure").hidden = false;
    // A procedure whose queue the pager does not have: say so now, not after "Cấp thẻ rung" is pressed.
    const unknown = proc.queue_known === false;
    if (!$("issue").dataset.connDisabled) $("issue").disabled = unknown;
    if (unknown) Edge.showError({ code: "unknown_service", params: { service: proc.queue_service } }, $("issue-error"));
  }

  function showTicket(ticket, card) {
    $("ticket-card").textContent = Edge.t("reception.take_card", { card });
    $("ticket-number").textContent = Edge.t("reception.ticket", { ticket });
    $("ticket").hidden = false;
  }

  $("scan-form").addEventListener("submit", async ev => {
    ev.preventDefault();
    $("scan-error").textContent = "";
    $("procedure").hidden = true; $("ticket").hidden = true;
    const r = await Edge.post("/api/reception/scan", { text: $("scan").value });
    $("scan").value = "";
    if (!r.ok) { Edge.showError(r.error ? r : { error: "reception.not_found" }, $("scan-error")); return; }
    showProcedure(r.procedure, r.code, r.priorities);
  });

  $("issue").addEventListener("click", async () => {
    const r = await Edge.post("/api/reception/issue", {
      service: String(current.queue_service || ""), priority: $("priority").value || null });
    if (!r.ok) { Edge.showError(r, $("issue-error"), $("procedure")); return; }
    $("issue-error").textContent = "";
    $("procedure").hidden = true;
    showTicket(r.ticket, r.card);
  });

  // The desk camera (QR service): with action = "ticket" the card is already issued. Such a ticket
  // goes to its own list: it must not replace the procedure or card the staff member is reading.
  const CAMERA_SHOWN = 2;
  const cameraTickets = [];
  function showCameraTickets() {
    const list = $("camera-tickets"); list.textContent = "";
    for (const t of cameraTickets) {
      const name = t.procedure ? ((Edge.lang === "en" && t.procedure.name_en) || t.procedure.name || "") : "";
      list.append(Edge.el("li", {}, Edge.t("reception.camera_item", { card: t.card, ticket: t.ticket, name })));
    }
    $("camera").hidden = !cameraTickets.length;
  }
  function onScan(item) {
    if (item.ticket) {
      cameraTickets.unshift(item);
      cameraTickets.length = Math.min(cameraTickets.length, CAMERA_SHOWN);
      showCameraTickets();
      return;
    }
    $("scan-error").textContent = "";
    if (!item.procedure) { $("procedure").hidden = true; $("scan-error").textContent = Edge.t("reception.not_found"); return; }
    showProcedure(item.procedure, item.code, item.priorities);
    if (item.refused_msg) Edge.showError(item.refused_msg, $("issue-error"));
  }

  $("lang").addEventListener("click", () => Edge.loadStrings(Edge.lang === "vi" ? "en" : "vi")
    .then(() => { if (current && !$("procedure").hidden) showProcedure(current); showCards(); showCameraTickets(); }));
  // Pager cards left, from the pager's live view: a warning before reception runs out. The view's
  // cards_low flag is the one rule central's alarm uses too (edge/pager/cards.py).
  let cardsFree = null, cardsLow = false;
  function showCards() {
    if (cardsFree === null || cardsFree === undefined) { $("cards").textContent = ""; return; }
    const low = cardsLow;
    $("cards").textContent = Edge.t(low ? "reception.cards_low" : "reception.cards_left", { n: cardsFree });
    $("cards").className = "cards" + (low ? " low" : "");
  }
  Edge.loadStrings("").then(() => {
    Edge.stream("/api/pager/events", view => { cardsFree = view.cards_free; cardsLow = view.cards_low === true; showCards(); });
    // Ready once the camera's stream is open: it carries only the codes read from then on.
    Edge.stream("/api/reception/events", onScan).source.addEventListener("open", () => {
      document.body.dataset.ready = "1";
    }, { once: true });
    $("scan").focus();
  });
})();
