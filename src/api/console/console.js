// The console's only script: keyboard shortcuts, live queue rows (polled, selection kept), and
// due-time countdowns. Everything also works without it (links and forms).
"use strict";
(function () {
  const page = document.body.dataset.page;
  const help = document.getElementById("help");

  function fmt(seconds) {
    const past = seconds < 0;
    let s = Math.abs(seconds);
    const d = Math.floor(s / 86400); s -= d * 86400;
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60);
    const text = d > 0 ? `${d}d ${h}h` : h > 0 ? `${h}h ${m}m` : `${m}m ${Math.floor(s % 60)}s`;
    return past ? `−${text}` : text;
  }

  // Countdowns: the server gives seconds left at render time; the page counts down from there.
  const started = Date.now();
  function tick() {
    document.querySelectorAll("[data-left]").forEach((el) => {
      const left = Number(el.dataset.left) - Math.floor((Date.now() - started) / 1000);
      el.textContent = fmt(left);
      el.classList.toggle("overdue", left < 0);
      el.title = el.dataset.due;
    });
  }
  tick();
  setInterval(tick, 1000);

  // The queue: j/k move, Enter opens, rows refresh without losing the selected task.
  const table = document.querySelector("table.queue");
  let selectedId = sessionStorage.getItem("cah-selected");
  function rows() { return Array.from(document.querySelectorAll("#rows tr[data-id]")); }
  function mark(row) {
    rows().forEach((r) => { r.classList.remove("selected"); r.removeAttribute("aria-current"); });
    if (!row) return;
    row.classList.add("selected");
    row.setAttribute("aria-current", "true");
  }
  function select(row) {
    mark(row);
    if (!row) return;
    row.focus({ preventScroll: false });
    selectedId = row.dataset.id;
    sessionStorage.setItem("cah-selected", selectedId);
  }
  function move(step) {
    const all = rows();
    if (all.length === 0) return;
    let i = all.findIndex((r) => r.dataset.id === selectedId);
    i = i < 0 ? 0 : Math.min(all.length - 1, Math.max(0, i + step));
    select(all[i]);
  }
  if (table) {
    const again = rows().find((r) => r.dataset.id === selectedId);
    if (again) select(again);
    table.addEventListener("click", (e) => {
      const row = e.target.closest("tr[data-id]");
      if (row && !e.target.closest("a")) window.location = `/console/tasks/${row.dataset.id}`;
    });
    const source = table.dataset.rows;
    setInterval(async () => {
      if (document.hidden) return;
      try {
        const response = await fetch(source, { credentials: "same-origin" });
        if (response.status === 401) { window.location = "/console/login"; return; }
        if (!response.ok) return;
        const text = await response.text();
        // The answer is bare <tr> elements: parsed on their own they would lose their tags.
        const doc = new DOMParser().parseFromString(`<table><tbody>${text}</tbody></table>`, "text/html");
        const tbody = document.getElementById("rows");
        const fresh = document.createElement("tbody");
        doc.querySelectorAll("tbody > tr").forEach((tr) => fresh.appendChild(document.importNode(tr, true)));
        // Focus stays where it was: on the same task's row, or on its link.
        const active = document.activeElement;
        const was = active && active.closest && active.closest("#rows tr[data-id]");
        tbody.replaceChildren(...fresh.children);
        mark(rows().find((r) => r.dataset.id === selectedId));
        const again = was && rows().find((r) => r.dataset.id === was.dataset.id);
        const target = again && (active === was ? again : again.querySelector("a"));
        if (target) target.focus({ preventScroll: true });
        tick();
      } catch (_) { /* offline for a moment: the next poll tries again */ }
    }, 5000);
  }

  function typing(e) {
    const t = e.target;
    return t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName));
  }

  // Single-key shortcuts can be turned off (WCAG 2.1.4: speech input users), with the checkbox in
  // the help dialog; the choice is kept in this browser.
  const toggle = document.getElementById("shortcuts-on");
  function keysOn() { return localStorage.getItem("cah-shortcuts") !== "off"; }
  if (toggle) {
    toggle.checked = keysOn();
    toggle.addEventListener("change", () => {
      if (toggle.checked) localStorage.removeItem("cah-shortcuts");
      else localStorage.setItem("cah-shortcuts", "off");
    });
  }

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e)) return;
    // Enter opens the selected task only from its row (j/k focus it): on a link, a button or
    // anything else it does what that control does.
    if (e.key === "Enter") {
      const row = e.target.closest && e.target.closest("#rows tr[data-id]");
      if (page === "queue" && row && e.target === row) {
        e.preventDefault();
        window.location = `/console/tasks/${row.dataset.id}`;
      }
      return;
    }
    if (!keysOn() || (help.open && e.key !== "?")) return;
    if (e.key === "?") { e.preventDefault(); if (help.open) help.close(); else help.showModal(); return; }
    if (page === "queue") {
      if (e.key === "j") { e.preventDefault(); move(1); }
      else if (e.key === "k") { e.preventDefault(); move(-1); }
    }
    if (e.key === "n") {
      const next = document.querySelector("[data-next]");
      if (next) { e.preventDefault(); next.click(); }
      else if (page === "task") { window.location = "/console/queue"; }
    }
    if (page === "task" && e.key === "c") {
      const claim = document.querySelector("[data-shortcut=c]");
      if (claim) { e.preventDefault(); claim.click(); }
    }
    if (page === "task" && e.key === "r") {
      const outcome = document.getElementById("outcome");
      if (outcome) { e.preventDefault(); outcome.scrollIntoView({ block: "center" }); outcome.focus(); }
    }
  });

  document.querySelectorAll("[data-help]").forEach((b) => b.addEventListener("click", () => help.showModal()));
})();
