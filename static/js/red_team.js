// The red-team editor: debounced live score with per-token saliency, and substitutions for a clicked token.
// The text being edited is kept in localStorage (per user and attempt) so a reload or a crash loses
// nothing; it is dropped once the attempt shows as submitted. Submit is enabled only while the latest
// text's score is below the threshold, with the reason beside it otherwise (the server checks again).
(function () {
  "use strict";
  const draftKey = function (user, attempt) { return "rt-draft:" + user + ":" + attempt; };
  const storage = (function () {
    try { return window.localStorage; } catch (e) { return null; } // storage disabled: no drafts
  })();

  // Pages that show an attempt as submitted: its draft has done its job.
  document.querySelectorAll("[data-rt-submitted]").forEach(function (el) {
    if (storage) storage.removeItem(draftKey(el.dataset.user, el.dataset.rtSubmitted));
  });

  const root = document.getElementById("red-team");
  if (!root) return;
  const textarea = document.getElementById("rt-text");
  const scoreEl = document.getElementById("rt-score");
  const verdictEl = document.getElementById("rt-verdict");
  const statusEl = document.getElementById("rt-status");
  const tokensEl = document.getElementById("rt-tokens");
  const subsEl = document.getElementById("rt-subs");
  const submit = document.getElementById("rt-submit");
  const reasonEl = document.getElementById("rt-submit-reason");
  const draftEl = document.getElementById("rt-draft");
  const threshold = root.dataset.threshold === "" ? null : Number(root.dataset.threshold);
  const key = draftKey(root.dataset.user, root.dataset.attempt);
  const csrf = document.querySelector("input[name=csrfmiddlewaretoken]").value;
  let timer = null;
  let sequence = 0;
  let lastText = null;
  let lastReason = "Waiting for the score of this text…"; // what Submit says about lastText

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(body),
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) {
          const field = Object.keys(data)[0];
          throw new Error(field + ": " + (Array.isArray(data[field]) ? data[field][0] : data[field]));
        }
        return data;
      });
    });
  }

  function blockSubmit(reason, scored) {
    if (scored) lastReason = reason;
    if (threshold === null) return; // the page already says why: no threshold yet
    submit.disabled = reason !== "";
    reasonEl.textContent = reason;
  }

  function saveDraft() {
    if (!storage) return;
    try {
      if (textarea.value === textarea.defaultValue) storage.removeItem(key);
      else storage.setItem(key, JSON.stringify({ text: textarea.value, saved_at: Date.now() }));
    } catch (e) { /* storage full: the edit still works, it just isn't kept */ }
  }

  function restoreDraft() {
    if (!storage) return;
    let draft = null;
    try { draft = JSON.parse(storage.getItem(key) || "null"); } catch (e) { draft = null; }
    if (!draft || typeof draft.text !== "string" || draft.text === textarea.value) return;
    textarea.value = draft.text;
    document.getElementById("rt-draft-time").textContent = new Date(draft.saved_at).toLocaleString();
    draftEl.hidden = false;
  }

  function colour(token, scale) {
    const strength = Math.min(1, Math.abs(token.saliency) / scale);
    return token.saliency >= 0 ? "rgba(214, 39, 40, " + (0.08 + 0.6 * strength) + ")" : "rgba(31, 119, 180, " + (0.08 + 0.6 * strength) + ")";
  }

  function showTokens(text, data) {
    tokensEl.textContent = "";
    const scale = Math.max.apply(null, data.tokens.map(function (t) { return Math.abs(t.saliency); }).concat([1e-9]));
    let cursor = 0;
    data.tokens.forEach(function (t) {
      if (t.start > cursor) tokensEl.appendChild(document.createTextNode(text.slice(cursor, t.start)));
      const button = document.createElement("button");
      button.type = "button";
      button.className = "rt-token";
      button.textContent = text.slice(t.start, t.end);
      button.style.background = colour(t, scale);
      button.title = t.token + "  saliency " + t.saliency.toFixed(4) + "  |grad| " + t.gradient_norm.toFixed(4);
      button.dataset.index = t.index;
      button.dataset.saliency = t.saliency;
      button.addEventListener("click", function () { suggest(t.index, button); });
      tokensEl.appendChild(button);
      cursor = t.end;
    });
    if (cursor < text.length) tokensEl.appendChild(document.createTextNode(text.slice(cursor)));
    if (data.truncated) {
      const note = document.createElement("p");
      note.className = "muted";
      note.textContent = "The classifier only reads the first tokens; the rest is not scored.";
      tokensEl.appendChild(note);
    }
  }

  function rescore() {
    const text = textarea.value;
    if (text === lastText) {
      // Edited and changed back: the text on screen is the one last scored (or being scored).
      statusEl.textContent = "";
      blockSubmit(lastReason);
      return;
    }
    lastText = text;
    blockSubmit("Waiting for the score of your latest edit…", true);
    const mine = ++sequence;
    statusEl.textContent = "scoring…";
    post(root.dataset.scoreUrl, { text: text }).then(function (data) {
      if (mine !== sequence) return; // a newer edit is on its way
      scoreEl.textContent = data.score.toFixed(4);
      scoreEl.dataset.score = data.score;
      blockSubmit(data.passes || data.threshold === null ? "" : "Can't submit: it scores " + data.score.toFixed(4) +
        ", at or above the threshold " + data.threshold.toFixed(4) + ", so the classifier still filters it. Lower the score first.", true);
      if (verdictEl) {
        verdictEl.textContent = data.passes ? "passes the classifier" : "filtered out";
        verdictEl.className = "badge " + (data.passes ? "active" : "offline");
      }
      statusEl.textContent = "";
      subsEl.textContent = "";
      showTokens(text, data);
    }).catch(function (err) {
      if (mine !== sequence) return;
      scoreEl.textContent = "—";
      statusEl.textContent = err.message;
      tokensEl.textContent = "";
      blockSubmit("Can't submit: " + err.message, true);
    });
  }

  function suggest(index, button) {
    tokensEl.querySelectorAll(".rt-token.selected").forEach(function (b) { b.classList.remove("selected"); });
    button.classList.add("selected");
    subsEl.textContent = "Finding replacements…";
    post(root.dataset.substitutionsUrl, { text: textarea.value, token_index: index }).then(function (data) {
      subsEl.textContent = "";
      const table = document.createElement("table");
      table.id = "rt-subs-table";
      table.innerHTML = "<thead><tr><th>Replace with</th><th>Estimated score</th><th>Exact score</th><th></th></tr></thead>";
      const body = document.createElement("tbody");
      data.substitutions.forEach(function (s) {
        const row = document.createElement("tr");
        [s.token, s.estimated_score.toFixed(4), s.score.toFixed(4)].forEach(function (v) {
          const cell = document.createElement("td");
          cell.textContent = v;
          row.appendChild(cell);
        });
        const cell = document.createElement("td");
        const use = document.createElement("button");
        use.type = "button";
        use.className = "secondary";
        use.textContent = "Use";
        use.addEventListener("click", function () { textarea.value = s.text; saveDraft(); blockSubmit("Waiting for the score of this text…"); rescore(); });
        cell.appendChild(use);
        row.appendChild(cell);
        body.appendChild(row);
      });
      table.appendChild(body);
      subsEl.appendChild(table);
    }).catch(function (err) { subsEl.textContent = err.message; });
  }

  textarea.addEventListener("input", function () {
    clearTimeout(timer);
    statusEl.textContent = "…";
    saveDraft();
    blockSubmit("Waiting for the score of your latest edit…");
    timer = setTimeout(rescore, 300);
  });
  document.getElementById("rt-draft-discard").addEventListener("click", function () {
    textarea.value = textarea.defaultValue;
    if (storage) storage.removeItem(key);
    draftEl.hidden = true;
    blockSubmit("Waiting for the score of this text…");
    rescore();
  });
  if (threshold === null) statusEl.textContent = "";
  restoreDraft();
  blockSubmit("Waiting for the score of this text…");
  rescore();
})();
