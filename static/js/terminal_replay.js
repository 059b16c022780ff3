// The recordings page: an asciinema player on the chosen terminal's cast, remounted at a new speed.
(function () {
  "use strict";
  const el = document.getElementById("player");
  if (!el || typeof AsciinemaPlayer === "undefined") return;
  let player = null;
  function mount(speed) {
    if (player) player.dispose();
    el.innerHTML = "";
    player = AsciinemaPlayer.create(el.dataset.castUrl, el, { idleTimeLimit: 2, speed: speed, fit: "width", preload: true, controls: true });
    window.rebenchPlayer = player;
  }
  mount(1);
  document.getElementById("replay-speed").addEventListener("change", (e) => mount(Number(e.target.value)));
})();
