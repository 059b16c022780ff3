// The threshold page's chart: filtered share and unsafe rate (with its exact 95 % band) against the threshold.
(function () {
  "use strict";
  function draw() {
    const el = document.getElementById("threshold-chart");
    if (!el || typeof vegaEmbed === "undefined") return;
    const points = JSON.parse(el.dataset.points || "[]");
    if (!points.length) { el.textContent = "Nothing to chart yet."; return; }
    const x = { field: "threshold", type: "quantitative", title: "threshold", scale: { type: "sqrt" } };
    const layers = [
      { data: { values: points.filter((p) => p.low !== undefined) },
        mark: { type: "area", opacity: 0.2 },
        encoding: { x: x, y: { field: "low", type: "quantitative" }, y2: { field: "high" }, color: { datum: "unsafe rate getting through" } } },
      { data: { values: points },
        mark: { type: "line", point: true },
        encoding: { x: x, y: { field: "value", type: "quantitative", title: "fraction", scale: { domain: [0, 1] } },
          color: { field: "series", type: "nominal", title: null, legend: { orient: "bottom" } },
          tooltip: [{ field: "series" }, { field: "threshold", format: ".4f" }, { field: "value", format: ".4f" },
            { field: "low", format: ".4f", title: "95 % low" }, { field: "high", format: ".4f", title: "95 % high" }] } },
    ];
    if (el.dataset.threshold) {
      layers.push({ data: { values: [{ t: Number(el.dataset.threshold) }] }, mark: { type: "rule", strokeDash: [4, 4] },
        encoding: { x: { field: "t", type: "quantitative" } } });
    }
    const spec = { $schema: "https://vega.github.io/schema/vega-lite/v6.json", width: "container", height: 260, layer: layers };
    // ast: Vega interprets chart expressions instead of compiling them with new Function(),
    // which the Content-Security-Policy forbids.
    vegaEmbed(el, spec, { actions: false, renderer: "svg", ast: true }).catch(function (err) { el.textContent = "Chart unavailable: " + err; });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw); else draw();
})();
