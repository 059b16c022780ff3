// The labeling page: keys 1/2/3 label, s skips, u undoes the last label, n focuses the note.
// The next item is leased and rendered ahead of time (htmx) into a hidden box, so a key press swaps
// it in at once while the label is posted in the background; leases are renewed while the page is open.
(() => {
  "use strict";
  const app = document.getElementById("review-app");
  if (!app) return;
  const current = document.getElementById("review-current");
  const prefetchBox = document.getElementById("review-prefetch");
  const status = document.getElementById("review-status");
  const note = document.getElementById("review-note");
  const form = document.getElementById("review-form");
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const urls = app.dataset;
  let shownAt = performance.now();
  let lastLabel = null; // {label: id}
  let chain = Promise.resolve(); // key presses run one after another, in order
  let prefetching = null;
  let posts = [];

  const itemOf = (box) => box.querySelector(".review-item[data-assignment]");
  const idOf = (box) => { const el = itemOf(box); return el ? el.dataset.assignment : null; };

  // kind: true or "error" (red), "warn" (a flag, e.g. too fast), anything else fine.
  function say(text, kind) {
    status.textContent = "";
    const span = document.createElement("span");
    span.className = kind === true || kind === "error" ? "review-error" : kind === "warn" ? "review-warn" : "review-ok";
    span.textContent = text;
    status.appendChild(span);
  }

  function showThroughput(t) {
    if (!t) return;
    for (const el of document.querySelectorAll("#review-throughput [data-k]")) {
      const v = t[el.dataset.k];
      el.textContent = v === null || v === undefined ? "—" : String(v);
    }
  }

  function showProgress(p) {
    if (!p) return;
    for (const el of document.querySelectorAll("#review-progress [data-p]")) {
      if (p[el.dataset.p] !== undefined) el.textContent = String(p[el.dataset.p]);
    }
    const bar = document.querySelector("#review-progress progress[data-bar=mine]");
    if (bar) { bar.max = p.mine_possible || 1; bar.value = p.mine; }
  }

  async function post(url, fields) {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(fields)) {
      for (const one of [].concat(v)) if (one !== null && one !== undefined) body.append(k, one);
    }
    const response = await fetch(url, {
      method: "POST", body, credentials: "same-origin",
      headers: { "X-CSRFToken": csrf, "Accept": "application/json" },
    });
    let data = {};
    try { data = await response.json(); } catch (e) { data = { ok: false, error: `server answered ${response.status}` }; }
    return data;
  }

  function prefetch() {
    // After the labels in flight have landed: until then the server still counts those items as
    // held, and would hand one back as "next".
    const pending = posts.slice();
    prefetching = Promise.all(pending).then(() => {
      const exclude = idOf(current);
      const url = urls.next + (exclude ? `?exclude=${encodeURIComponent(exclude)}` : "");
      return htmx.ajax("GET", url, { target: prefetchBox, swap: "innerHTML" });
    }).catch(() => {});
    return prefetching;
  }

  function syncForm() {
    const id = idOf(current);
    form.querySelector("input[name=assignment]").value = id || "";
    for (const b of form.querySelectorAll("button")) b.disabled = !id && b.dataset.action !== "undo";
    shownAt = performance.now();
  }

  async function advance() {
    if (prefetching) await prefetching;
    if (itemOf(prefetchBox) || prefetchBox.querySelector(".review-empty")) {
      current.innerHTML = prefetchBox.innerHTML;
      prefetchBox.innerHTML = "";
    } else {
      const message = prefetchBox.textContent.trim();
      current.innerHTML = "";
      if (message) say(message, true);
    }
    note.value = "";
    syncForm();
    if (itemOf(current)) prefetch();
  }

  function label(value) {
    const assignment = idOf(current);
    if (!assignment) return Promise.resolve();
    const seconds = ((performance.now() - shownAt) / 1000).toFixed(2);
    const sent = post(urls.submit, { assignment, value, note: note.value, seconds }).then((data) => {
      if (data.ok) {
        lastLabel = { label: data.label };
        say(data.message || `Labelled ${data.value}.`, data.too_fast ? "warn" : false);
        showThroughput(data.throughput);
        showProgress(data.progress);
      } else {
        say(`Label not saved: ${data.error}`, true);
      }
    });
    track(sent);
    return advance();
  }

  function track(sent) {
    posts.push(sent);
    const forget = () => { posts = posts.filter((p) => p !== sent); };
    sent.then(forget, forget);
  }

  function skip() {
    const assignment = idOf(current);
    if (!assignment) return Promise.resolve();
    track(post(urls.skip, { assignment }).then((d) => {
      if (!d.ok) { say(`Skip failed: ${d.error}`, true); return; }
      say(d.message, false);
      showProgress(d.progress);
    }));
    return advance();
  }

  async function undo() {
    await Promise.all(posts);
    if (!lastLabel) { say("Nothing to undo.", true); return; }
    const data = await post(urls.undo, { label: lastLabel.label });
    if (!data.ok) { say(`Can't undo: ${data.error}`, true); lastLabel = null; return; }
    lastLabel = null;
    if (prefetching) await prefetching;
    // The item on screen becomes the prefetched one again; the old prefetched lease goes back.
    const spare = idOf(prefetchBox);
    if (spare) post(urls.release, { assignment: spare });
    prefetchBox.innerHTML = current.innerHTML;
    current.innerHTML = data.html;
    note.value = "";
    syncForm();
    showThroughput(data.throughput);
    showProgress(data.progress);
    say("Label undone: label this item again.", false);
  }

  function run(action) { chain = chain.then(action).catch((e) => say(String(e), true)); }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const typing = event.target === note || ["INPUT", "TEXTAREA", "SELECT"].includes(event.target.tagName);
    if (typing) { if (event.key === "Escape") note.blur(); return; }
    const values = { "1": "injurious", "2": "safe", "3": "unsure" };
    if (values[event.key]) { event.preventDefault(); run(() => label(values[event.key])); }
    else if (event.key === "s") { event.preventDefault(); run(skip); }
    else if (event.key === "u") { event.preventDefault(); run(undo); }
    else if (event.key === "n") { event.preventDefault(); note.focus(); }
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = event.submitter ? event.submitter.value : "";
    if (value) run(() => label(value));
  });
  for (const b of form.querySelectorAll("button[data-action]")) {
    b.addEventListener("click", () => run(b.dataset.action === "skip" ? skip : undo));
  }

  setInterval(async () => {
    const held = [idOf(current), idOf(prefetchBox)].filter(Boolean);
    if (!held.length) return;
    const data = await post(urls.renew, { assignment: held });
    if (!data.ok || !data.leases) return;
    if (data.leases[idOf(current)] === null) {
      say("Your lease on this item expired and it went back to the queue; here is the next one.", true);
      run(advance);
    } else if (idOf(prefetchBox) && data.leases[idOf(prefetchBox)] === null) {
      prefetch();
    }
  }, Number(urls.renewMs) || 60000);

  syncForm();
  if (itemOf(current)) prefetch();
})();
