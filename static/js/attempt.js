// The attempt's bar and its live parts. The server owns the clock: this only draws the server's numbers.
// Remaining time is turned into a local end moment on Date.now() (wall clock, so it keeps running while
// a laptop sleeps) and re-synced from the server every few seconds. The clock's answer carries a
// `version` of everything the page shows live (state, pauses, scores, notes, the set-up, the end): when
// it moves, the page's live parts are fetched and swapped in by id (htmx out-of-band), never the whole
// page, so the terminals stay connected and an unsent note stays in its box.
(function () {
  "use strict";
  const bar = document.getElementById("attempt-bar");
  if (!bar) return;
  const countdown = document.getElementById("countdown");
  const clockUrl = bar.dataset.clockUrl;
  const liveUrl = bar.dataset.liveUrl;
  const SYNC_VISIBLE_MS = 5000, SYNC_HIDDEN_MS = 60000;
  let state = "init";
  let endAt = null;       // local ms when remaining hits 0 (running only)
  let elapsedAt0 = 0;     // elapsed seconds at syncAt
  let syncAt = Date.now();
  let remainingFixed = null;
  let version = null;

  function fmt(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    return [h, m, s].map((v) => String(v).padStart(2, "0")).join(":");
  }

  function apply(data) {
    const now = Date.now();
    state = data.state;
    syncAt = now;
    elapsedAt0 = Number(data.elapsed_seconds);
    remainingFixed = data.remaining_seconds === null || data.remaining_seconds === "" ? null : Number(data.remaining_seconds);
    endAt = state === "running" && remainingFixed !== null ? now + remainingFixed * 1000 : null;
    tick();
  }

  // The status block the server rendered (first load, or swapped in) holds the same numbers as data-*.
  function applyStatus() {
    const status = document.getElementById("attempt-status");
    if (!status) return;
    version = status.dataset.version || version;
    apply({ state: status.dataset.state, elapsed_seconds: status.dataset.elapsed, remaining_seconds: status.dataset.remaining });
  }

  function tick() {
    const now = Date.now();
    const elapsedEl = document.getElementById("elapsed");
    let remaining;
    if (state === "running" && endAt !== null) {
      remaining = (endAt - now) / 1000;
      countdown.textContent = fmt(remaining);
      if (elapsedEl) elapsedEl.textContent = fmt(elapsedAt0 + (now - syncAt) / 1000);
      if (remaining <= 0 && now - lastSyncAt > 2000) sync();  // the server ends it; ask, gently
    } else {
      // An ended attempt has no time left to count: "00:00:00" after a 7-minute attempt read as a time-out.
      countdown.textContent = state === "ended" ? "ended" : fmt(remainingFixed === null ? 0 : remainingFixed);
      if (elapsedEl) elapsedEl.textContent = fmt(elapsedAt0);
    }
    countdown.dataset.state = state;
    const preparing = document.getElementById("workspace-preparing");
    const since = preparing && !preparing.hidden ? preparing.querySelector("[data-elapsed-since]") : null;
    if (since && !since.textContent.trim().startsWith("Taking")) {
      since.textContent = `${Math.max(0, Math.floor(now / 1000 - Number(preparing.dataset.since)))} s so far.`;
    }
  }

  function refreshLive() {
    if (typeof htmx === "undefined") { window.location.reload(); return; }
    // swap "none": only the response's out-of-band parts go in, each in place of its namesake.
    htmx.ajax("GET", liveUrl, { source: bar, swap: "none" });
  }

  let syncing = false;
  let lastSyncAt = 0;
  function sync() {
    if (syncing) return;
    syncing = true;
    lastSyncAt = Date.now();
    fetch(clockUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : null))
      .then((data) => {
        if (!data) return;
        apply(data);
        if (version !== null && data.version !== version) refreshLive();
        version = data.version;
      })
      .catch(() => {
        const stateEl = document.getElementById("clock-state");
        if (stateEl) stateEl.title = "can't reach the server; showing the last known time";
      })
      .finally(() => { syncing = false; });
  }

  function schedule() {
    setTimeout(() => { sync(); schedule(); }, document.hidden ? SYNC_HIDDEN_MS : SYNC_VISIBLE_MS);
  }

  // The terminal, the page and the window: full screen is the bar and the terminal filling the window.
  const workspace = document.getElementById("attempt-workspace");
  function setFull(on) {
    const button = document.getElementById("fullscreen-button");
    workspace.classList.toggle("full", on);
    document.body.classList.toggle("attempt-full", on);
    if (button) {
      button.setAttribute("aria-pressed", String(on));
      button.textContent = on ? "Exit full screen" : "Full screen";
    }
    if (on && workspace.requestFullscreen && !document.fullscreenElement) workspace.requestFullscreen().catch(() => {});
    if (!on && document.fullscreenElement) document.exitFullscreen().catch(() => {});
    const tabs = window.rebenchTerminals;
    if (tabs) for (const tab of tabs.values()) if (!tab.screen.hidden) { tab.fit.fit(); tab.term.focus(); }
  }
  document.addEventListener("click", (event) => {
    if (event.target instanceof Element && event.target.closest("#fullscreen-button")) setFull(!workspace.classList.contains("full"));
  });
  // Leaving the browser's full screen (its own Esc) leaves ours too; Esc itself stays the shell's and vim's.
  document.addEventListener("fullscreenchange", () => { if (!document.fullscreenElement && workspace.classList.contains("full")) setFull(false); });

  document.body.addEventListener("htmx:oobAfterSwap", (event) => {
    if (event.detail && event.detail.target && event.detail.target.id === "attempt-status") applyStatus();
    if (event.detail && event.detail.target && event.detail.target.id === "workspace-main" && workspace.classList.contains("full")) setFull(false);
  });
  // The terminal says when something happened on the workstation (frozen, ended, an admin's message).
  document.addEventListener("attempt:poke", sync);

  applyStatus();
  setInterval(tick, 250);
  schedule();
  document.addEventListener("visibilitychange", () => { if (!document.hidden) sync(); });
  window.addEventListener("focus", sync);
})();
