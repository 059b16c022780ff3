// The attempt countdown. The server owns the clock: this only draws the server's numbers.
// Remaining time is turned into a local end moment on Date.now() (wall clock, so it keeps
// running while a laptop sleeps), and re-synced from the server on wake and every minute.
(function () {
  "use strict";
  const card = document.getElementById("clock-card");
  if (!card) return;
  const countdown = document.getElementById("countdown");
  const elapsedEl = document.getElementById("elapsed");
  const stateEl = document.getElementById("clock-state");
  const url = card.dataset.clockUrl;
  let state = card.dataset.state;
  let endAt = null;       // local ms when remaining hits 0 (running only)
  let elapsedAt0 = 0;     // elapsed seconds at syncAt
  let syncAt = Date.now();
  let remainingFixed = null;

  function fmt(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    return [h, m, s].map((v) => String(v).padStart(2, "0")).join(":");
  }

  function apply(data) {
    const now = Date.now();
    const previous = state;
    state = data.state;
    syncAt = now;
    elapsedAt0 = Number(data.elapsed_seconds);
    remainingFixed = data.remaining_seconds === null || data.remaining_seconds === "" ? null : Number(data.remaining_seconds);
    endAt = state === "running" && remainingFixed !== null ? now + remainingFixed * 1000 : null;
    if (previous && previous !== state && previous !== "init") {
      window.location.reload();  // paused/ended elsewhere (another tab, the deadline, an admin)
    }
  }

  function tick() {
    const now = Date.now();
    if (state === "running" && endAt !== null) {
      const remaining = (endAt - now) / 1000;
      countdown.textContent = fmt(remaining);
      elapsedEl.textContent = fmt(elapsedAt0 + (now - syncAt) / 1000);
      if (remaining <= 0 && now - lastSyncAt > 2000) sync();  // the server ends it; ask, gently
    } else {
      // An ended attempt has no time left to count: "00:00:00" after a 7-minute attempt read as a time-out.
      countdown.textContent = state === "ended" ? "ended" : fmt(remainingFixed === null ? 0 : remainingFixed);
      elapsedEl.textContent = fmt(elapsedAt0);
    }
    countdown.dataset.state = state;
  }

  let syncing = false;
  let lastSyncAt = 0;
  function sync() {
    if (syncing) return;
    syncing = true;
    lastSyncAt = Date.now();
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : null))
      .then((data) => { if (data) apply(data); })
      .catch(() => { if (stateEl) stateEl.title = "can't reach the server; showing the last known time"; })
      .finally(() => { syncing = false; });
  }

  state = "init";
  apply({
    state: card.dataset.state,
    elapsed_seconds: card.dataset.elapsed,
    remaining_seconds: card.dataset.remaining,
  });
  tick();
  setInterval(tick, 250);
  setInterval(sync, 60000);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) sync(); });
  window.addEventListener("focus", sync);
})();
