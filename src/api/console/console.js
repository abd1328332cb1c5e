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
  function select(row) {
    rows().forEach((r) => r.classList.remove("selected"));
    if (!row) return;
    row.classList.add("selected");
    row.setAttribute("aria-selected", "true");
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
        const doc = new DOMParser().parseFromString(text, "text/html");
        const body = doc.querySelector("tbody") || doc.body;
        const tbody = document.getElementById("rows");
        const fresh = document.createElement("tbody");
        fresh.innerHTML = "";
        body.querySelectorAll("tr").forEach((tr) => fresh.appendChild(document.importNode(tr, true)));
        tbody.replaceChildren(...fresh.children);
        const keep = rows().find((r) => r.dataset.id === selectedId);
        if (keep) { keep.classList.add("selected"); }
        tick();
      } catch (_) { /* offline for a moment: the next poll tries again */ }
    }, 5000);
  }

  function typing(e) {
    const t = e.target;
    return t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName));
  }

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e)) return;
    if (e.key === "?") { e.preventDefault(); if (help.open) help.close(); else help.showModal(); return; }
    if (page === "queue") {
      if (e.key === "j") { e.preventDefault(); move(1); }
      else if (e.key === "k") { e.preventDefault(); move(-1); }
      else if (e.key === "Enter" && selectedId) { e.preventDefault(); window.location = `/console/tasks/${selectedId}`; }
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
