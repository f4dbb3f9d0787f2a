/*
 * Draws the charts of a feature's Reporting tab once htmx has loaded it. On full pages
 * unfold's own script (unfold/js/app.js) draws every canvas.chart on load; a fragment
 * loaded later needs the same done for its canvases. Chart.js is the copy bundled by unfold.
 */
(function () {
  "use strict";

  function cssColor(value) {
    if (typeof value !== "string" || !value.startsWith("var(")) {
      return value;
    }
    const name = value.slice(4, -1).trim();
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function draw(root) {
    if (typeof Chart === "undefined") {
      return;
    }
    root.querySelectorAll("canvas.chart").forEach(function (canvas) {
      if (Chart.getChart(canvas) || !canvas.dataset.value) {
        return;
      }
      const data = JSON.parse(canvas.dataset.value);
      for (const dataset of data.datasets || []) {
        for (const property of ["backgroundColor", "borderColor"]) {
          const value = dataset[property];
          dataset[property] = Array.isArray(value) ? value.map(cssColor) : cssColor(value);
        }
      }
      new Chart(canvas, {
        type: canvas.dataset.type || "bar",
        data: data,
        options: canvas.dataset.options ? JSON.parse(canvas.dataset.options) : {},
      });
    });
  }

  document.addEventListener("htmx:afterSettle", function (event) {
    draw(event.target);
  });
})();
