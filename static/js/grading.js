// The score chart on the attempt page: score against working time, drawn by Vega-Lite from the
// points the server put on #score-chart. Redrawn whenever htmx swaps in a fresh score card.
(function () {
  "use strict";

  function draw(root) {
    const el = (root || document).querySelector("#score-chart");
    if (!el || typeof vegaEmbed === "undefined") return;
    const points = JSON.parse(el.dataset.points || "[]");
    if (!points.length) {
      el.textContent = "";
      return;
    }
    const spec = {
      $schema: "https://vega.github.io/schema/vega-lite/v6.json",
      width: "container",
      height: 160,
      data: { values: points },
      mark: { type: "line", point: true },
      encoding: {
        x: { field: "elapsed_minutes", type: "quantitative", title: "working time (min)" },
        y: {
          field: "score",
          type: "quantitative",
          title: el.dataset.direction === "lower" ? "score (lower is better)" : "score (higher is better)",
          scale: { zero: false },
        },
        tooltip: [
          { field: "elapsed_minutes", title: "minutes" },
          { field: "score", format: ".4f" },
        ],
      },
    };
    // ast: Vega interprets chart expressions instead of compiling them with new Function(),
    // which the Content-Security-Policy forbids.
    vegaEmbed(el, spec, { actions: false, renderer: "svg", ast: true }).catch(function (err) {
      el.textContent = "Chart unavailable: " + err;
    });
  }

  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.body && document.body.addEventListener("htmx:afterSwap", function () { draw(document); });
  if (document.readyState !== "loading") draw(document);
})();
