// Leaderboard pages: budget curves drawn by Vega-Lite from the snapshot's JSON (#leaderboard-data),
// and click-to-sort on tables with class "sortable" (cells may carry data-value for numeric order).
(function () {
  "use strict";

  function rows(curves) {
    const out = [];
    curves.forEach(function (c) {
      c.points.forEach(function (p) {
        if (p.value === null) return; // n < k: undefined, not zero
        out.push({
          environment: c.environment,
          group: c.group_label,
          budget_hours: p.budget_hours,
          value: p.value,
          ci_low: p.ci_low === null ? p.value : p.ci_low,
          ci_high: p.ci_high === null ? p.value : p.ci_high,
          k: p.k,
        });
      });
    });
    return out;
  }

  function layers() {
    const x = {
      field: "budget_hours",
      type: "quantitative",
      title: "total time budget (hours, log scale)",
      scale: { type: "log", base: 2, domain: [0.5, 64] },
      axis: { values: [0.5, 1, 2, 4, 8, 16, 32, 64] },
    };
    const color = { field: "group", type: "nominal", title: "participants" };
    return [
      {
        mark: { type: "area", opacity: 0.18 },
        encoding: {
          x: x,
          y: { field: "ci_low", type: "quantitative" },
          y2: { field: "ci_high" },
          color: color,
        },
      },
      {
        mark: { type: "line", point: true },
        encoding: {
          x: x,
          y: { field: "value", type: "quantitative", title: "normalised score" },
          color: color,
          tooltip: [
            { field: "group", title: "participants" },
            { field: "environment" },
            { field: "budget_hours", title: "budget (h)", format: ".2f" },
            { field: "k", title: "best of k" },
            { field: "value", title: "score", format: ".3f" },
            { field: "ci_low", title: "95% low", format: ".3f" },
            { field: "ci_high", title: "95% high", format: ".3f" },
          ],
        },
      },
      {
        mark: { type: "rule", strokeDash: [4, 4], color: "#999" },
        encoding: { y: { datum: 1 } },
      },
    ];
  }

  function draw(el, data) {
    const facet = el.dataset.facet === "environment";
    const wanted = el.dataset.environment;
    const curves = data.curves.filter(function (c) {
      return facet ? c.environment !== "overall" : c.environment === wanted;
    });
    const values = rows(curves);
    if (!values.length) {
      el.textContent = "No curve to draw yet.";
      return;
    }
    const base = { $schema: "https://vega.github.io/schema/vega-lite/v6.json", data: { values: values } };
    const spec = facet
      ? Object.assign(base, {
          facet: { field: "environment", type: "nominal", title: null },
          columns: 3,
          spec: { width: 260, height: 170, layer: layers() },
        })
      : Object.assign(base, { width: "container", height: 320, layer: layers() });
    // ast: Vega interprets chart expressions instead of compiling them with new Function(),
    // which the Content-Security-Policy forbids.
    vegaEmbed(el, spec, { actions: false, renderer: "svg", ast: true }).catch(function (err) {
      el.textContent = "Chart unavailable: " + err;
    });
  }

  function charts() {
    const script = document.getElementById("leaderboard-data");
    if (!script || typeof vegaEmbed === "undefined") return;
    const data = JSON.parse(script.textContent);
    document.querySelectorAll(".leaderboard-chart").forEach(function (el) { draw(el, data); });
  }

  function sortable(table) {
    table.querySelectorAll("thead th").forEach(function (th, index) {
      th.style.cursor = "pointer";
      th.title = "Sort";
      th.addEventListener("click", function () {
        const numeric = th.dataset.sort === "number";
        const ascending = th.dataset.order !== "asc";
        table.querySelectorAll("thead th").forEach(function (other) { delete other.dataset.order; });
        th.dataset.order = ascending ? "asc" : "desc";
        const body = table.tBodies[0];
        const items = Array.from(body.rows).filter(function (r) { return r.cells.length > index; });
        function key(row) {
          const cell = row.cells[index];
          const raw = cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent.trim();
          return numeric ? parseFloat(raw) || 0 : raw.toLowerCase();
        }
        items.sort(function (a, b) {
          const ka = key(a), kb = key(b);
          const order = ka < kb ? -1 : ka > kb ? 1 : 0;
          return ascending ? order : -order;
        });
        items.forEach(function (row) { body.appendChild(row); });
      });
    });
  }

  function init() {
    document.querySelectorAll("table.sortable").forEach(sortable);
    charts();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
