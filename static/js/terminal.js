// The browser terminal: xterm.js tabs, each on its own WebSocket with binary frames and flow control.
// Frames: first byte is the type (0 input, 1 output, 2 resize, 3 ack); JSON text frames carry
// hello / status / error / close. Output is acknowledged only after xterm.js has drawn it, so the
// server never runs more than its high-water mark ahead of the screen.
(function () {
  "use strict";
  const panel = document.getElementById("terminal-panel");
  if (!panel || typeof Terminal === "undefined") return;

  const INPUT = 0, OUTPUT = 1, RESIZE = 2, ACK = 3;
  const attemptId = panel.dataset.attempt;
  const readonly = panel.dataset.readonly === "true";
  const maxTabs = Number(panel.dataset.maxTabs || 8);
  const tabsEl = document.getElementById("terminal-tabs");
  const screensEl = document.getElementById("terminal-screens");
  const statusEl = document.getElementById("terminal-status");
  const messageEl = document.getElementById("terminal-message");
  const newTabButton = document.getElementById("terminal-new-tab");
  const noticeEl = document.getElementById("terminal-notice");
  const frozenEl = document.getElementById("terminal-frozen");
  if (noticeEl) noticeEl.querySelector("button").addEventListener("click", () => { noticeEl.hidden = true; });
  const encoder = new TextEncoder();
  const tabs = new Map();
  let current = null;

  // lineHeight 1 cuts the underscore off: at device-pixel-ratio 1 with DejaVu Sans Mono (Linux's default
  // monospace) the glyph sits below the row's box, so `snake_case` read "snake case". 1.2 keeps it inside
  // (tests/browser/test_terminal_font.py compares a row with "_" against one with " ").
  function terminalOptions() {
    return {
      cursorBlink: true,
      disableStdin: readonly,
      fontFamily: 'ui-monospace, "SFMono-Regular", Menlo, "DejaVu Sans Mono", monospace',
      fontSize: 14,
      lineHeight: 1.2,
      scrollback: 10000,
    };
  }

  function poke() { document.dispatchEvent(new CustomEvent("attempt:poke")); }

  function frame(type, payload) {
    const out = new Uint8Array(1 + payload.length);
    out[0] = type;
    out.set(payload, 1);
    return out;
  }

  function showState(tab) {
    if (tab !== current) return;
    statusEl.dataset.state = tab.state;
    statusEl.textContent = tab.state === "closed" ? "closed" : tab.state === "connected" ? "connected" : tab.state + "…";
    messageEl.textContent = tab.message || "";
  }

  function setState(tab, state, message) {
    tab.state = state;
    tab.message = message || "";
    tab.button.dataset.state = state;
    showState(tab);
  }

  function connect(tab) {
    if (tab.final) return;
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${proto}//${location.host}/ws/attempts/${attemptId}/terminal/${tab.n}/?cols=${tab.term.cols}&rows=${tab.term.rows}`;
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    tab.ws = ws;
    setState(tab, tab.everConnected ? "reconnecting" : "connecting", tab.message);
    ws.onmessage = (event) => {
      if (typeof event.data === "string") return control(tab, JSON.parse(event.data));
      const bytes = new Uint8Array(event.data);
      if (bytes[0] !== OUTPUT) return;
      const payload = bytes.subarray(1);
      const length = payload.length;
      tab.term.write(payload, () => ack(tab, ws, length));
    };
    ws.onclose = (event) => {
      if (tab.ws !== ws) return;
      tab.ws = null;
      if (event.code >= 4000 || tab.final) {
        tab.final = true;
        setState(tab, "closed", tab.closeReason || "The server closed this terminal.");
        return;
      }
      const delay = Math.min(10000, 500 * 2 ** Math.min(tab.retries++, 5));
      setState(tab, "reconnecting", `Connection lost; reconnecting in ${Math.round(delay / 1000)} s.`);
      setTimeout(() => connect(tab), delay);
    };
  }

  function ack(tab, ws, length) {
    tab.pendingAck += length;
    // Frames are already coalesced on the server, so one ack per drawn frame is cheap enough.
    if (ws.readyState === WebSocket.OPEN) {
      const payload = new Uint8Array(4);
      new DataView(payload.buffer).setUint32(0, tab.pendingAck);
      ws.send(frame(ACK, payload));
      tab.pendingAck = 0;
    }
  }

  function control(tab, msg) {
    if (msg.type === "hello") {
      tab.everConnected = true;
      tab.retries = 0;
      setState(tab, "connected", msg.readonly ? "read-only: you are watching" : "");
      sendSize(tab);
    } else if (msg.type === "status") {
      setState(tab, msg.state === "connected" ? "connected" : "reconnecting", msg.message || "");
    } else if (msg.type === "error") {
      const retry = msg.retry_in ? ` Retrying in ${msg.retry_in} s.` : "";
      setState(tab, msg.retry_in ? "reconnecting" : tab.state, msg.message + retry);
      if (msg.retry_in) tab.term.writeln(`\r\n\x1b[33m${msg.message}${retry}\x1b[0m`);
    } else if (msg.type === "close") {
      tab.final = true;
      tab.closeReason = msg.reason;
      tab.term.writeln(`\r\n\x1b[31m${msg.reason}\x1b[0m`);
      setState(tab, "closed", msg.reason);
      poke();
    } else if (msg.type === "frozen") {
      // A pause or the deadline froze the attempt's processes on the workstation (or they run again).
      // Said above the terminal, not written into it: a line in the screen would leave the prompt dangling.
      if (frozenEl) {
        frozenEl.querySelector("span").textContent = msg.message;
        frozenEl.hidden = !msg.frozen;
      }
      poke();
    } else if (msg.type === "notice") {
      // An admin's message: a banner over the terminal that stays until dismissed. Not a line in the
      // screen: the shell doesn't know it is there, so the prompt would be left dangling under it.
      if (noticeEl) {
        noticeEl.querySelector("span").textContent = msg.message;
        noticeEl.querySelector("time").textContent = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
        noticeEl.hidden = false;
        noticeEl.classList.remove("fresh");
        void noticeEl.offsetWidth;  // restart the attention animation for a second message
        noticeEl.classList.add("fresh");
      }
    }
  }

  function sendSize(tab) {
    if (readonly || !tab.ws || tab.ws.readyState !== WebSocket.OPEN) return;
    const payload = new Uint8Array(4);
    const view = new DataView(payload.buffer);
    view.setUint16(0, tab.term.cols);
    view.setUint16(2, tab.term.rows);
    tab.ws.send(frame(RESIZE, payload));
  }

  function send(tab, bytes) {
    if (readonly || !tab.ws || tab.ws.readyState !== WebSocket.OPEN) return;
    tab.ws.send(frame(INPUT, bytes));
  }

  function select(tab) {
    current = tab;
    for (const t of tabs.values()) {
      t.screen.hidden = t !== tab;
      t.button.setAttribute("aria-selected", String(t === tab));
    }
    tab.fit.fit();
    tab.term.focus();
    showState(tab);
  }

  function addTab(n) {
    if (tabs.has(n)) return tabs.get(n);
    const screen = document.createElement("div");
    screen.className = "terminal-screen";
    screen.dataset.terminal = n;
    screensEl.appendChild(screen);
    const button = document.createElement("button");
    button.type = "button";
    button.role = "tab";
    button.textContent = `Terminal ${n}`;
    button.dataset.terminal = n;
    tabsEl.appendChild(button);
    const term = new Terminal(terminalOptions());
    const fit = new FitAddon.FitAddon();
    term.loadAddon(fit);
    term.open(screen);
    const tab = { n, term, fit, screen, button, ws: null, state: "connecting", message: "", retries: 0, pendingAck: 0, final: false, everConnected: false };
    tabs.set(n, tab);
    // Ctrl+Shift+C copies the selection (plain Ctrl+C is the shell's interrupt); Ctrl+Shift+V pastes.
    term.attachCustomKeyEventHandler((e) => {
      if (e.type === "keydown" && e.ctrlKey && e.shiftKey && e.code === "KeyC") {
        const text = term.getSelection();
        if (text && navigator.clipboard) navigator.clipboard.writeText(text);
        return false;
      }
      if (e.type === "keydown" && e.ctrlKey && e.shiftKey && e.code === "KeyV") return false;  // the browser's paste event follows
      return true;
    });
    term.onData((data) => send(tab, encoder.encode(data)));
    term.onBinary((data) => send(tab, Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff)));
    term.onResize(() => sendSize(tab));
    button.addEventListener("click", () => select(tab));
    if (!current) select(tab);
    fit.fit();
    connect(tab);
    return tab;
  }

  new ResizeObserver(() => { if (current) current.fit.fit(); }).observe(screensEl);
  const known = (panel.dataset.terminals || "").split(",").filter(Boolean).map(Number).sort((a, b) => a - b);
  if (panel.dataset.running !== "true") {
    statusEl.dataset.state = "closed";
    statusEl.textContent = "closed";
    messageEl.textContent = "The attempt has ended.";
    return;
  }
  (known.length ? known : [1]).forEach(addTab);
  if (tabs.size) select(tabs.get(known.length ? known[0] : 1));
  if (newTabButton) {
    newTabButton.addEventListener("click", () => {
      const next = Math.max(0, ...tabs.keys()) + 1;
      if (next > maxTabs) { messageEl.textContent = `At most ${maxTabs} terminals.`; return; }
      select(addTab(next));
    });
  }
  window.rebenchTerminals = tabs;  // for debugging from the console, and for the browser tests
})();
