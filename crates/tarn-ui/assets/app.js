// tarn's page script: draws charts from their data-chart JSON (uPlot), and
// forwards the MLflow UI's hash links (`/#/experiments/1/runs/abc`) to
// tarn's pages at the same paths Databricks uses.
(function () {
  "use strict";

  function forwardHashLink() {
    if (location.pathname !== "/" || !location.hash.startsWith("#/")) return;
    var path = location.hash.slice(1).split("?")[0];
    var m;
    if ((m = path.match(/^\/experiments\/([^/]+)\/runs\/([^/]+)/))) {
      location.replace("/ml/experiments/" + m[1] + "/runs/" + m[2]);
    } else if ((m = path.match(/^\/experiments\/([^/]+)/))) {
      location.replace("/ml/experiments/" + m[1]);
    } else if ((m = path.match(/^\/models\/([^/]+)(\/versions\/([^/]+))?/))) {
      location.replace("/ml/models/" + m[1] + (m[3] ? "/versions/" + m[3] : ""));
    } else if (path.startsWith("/experiments") || path === "/") {
      location.replace("/ml/experiments");
    }
  }

  var palette = ["#0b5cad", "#cf222e", "#1a7f37", "#bf8700", "#8250df", "#0a7480", "#d1242f", "#57606a"];

  function tick(v) {
    if (v == null) return "";
    return v !== 0 && Math.abs(v) < 0.01 ? v.toPrecision(2) : v.toLocaleString();
  }

  // The y axis as wide as its longest label.
  function labelRoom(u, values) {
    var longest = (values || []).reduce(function (n, v) { return Math.max(n, String(v).length); }, 0);
    return Math.max(50, longest * 7 + 18);
  }

  function drawChart(el) {
    if (el.dataset.drawn || typeof uPlot === "undefined") return;
    el.dataset.drawn = "true";
    var spec = JSON.parse(el.dataset.chart);
    var width = Math.max(320, Math.min(el.clientWidth - 20, 900));
    var series = [{ label: spec.x_label }];
    var data = [spec.x];
    spec.series.forEach(function (s, i) {
      var color = palette[i % palette.length];
      var one = { label: s.label, stroke: color, width: 2, spanGaps: true, points: { show: spec.x.length < 60 } };
      if (spec.bars) {
        one.fill = color + "99";
        one.paths = uPlot.paths.bars({ size: [0.6, 60] });
        one.points = { show: false };
      }
      series.push(one);
      data.push(s.y);
    });
    new uPlot({
      width: width,
      height: 240,
      scales: { x: { time: !!spec.time } },
      // Small values (a cost of 0.0005) keep their digits instead of rounding to 0.
      axes: [{ label: spec.x_label }, { values: function (u, ticks) { return ticks.map(tick); }, size: labelRoom }],
      series: series,
    }, data, el);
  }

  function drawCharts(root) {
    (root || document).querySelectorAll("[data-chart]").forEach(drawChart);
  }

  // An action that failed (a 4xx or 5xx answer to an hx-post) says why in a
  // banner at the top of the page instead of failing silently.
  function showError(event) {
    var xhr = event.detail.xhr;
    var message = xhr.responseText;
    try { message = JSON.parse(xhr.responseText).message || message; } catch (e) { /* plain text */ }
    var banner = document.getElementById("banner");
    if (!banner) {
      banner = document.createElement("p");
      banner.id = "banner";
      banner.className = "error";
      banner.setAttribute("role", "alert");
      var main = document.querySelector("main");
      main.insertBefore(banner, main.firstChild);
    }
    banner.textContent = message || ("The server answered " + xhr.status);
  }

  forwardHashLink();
  window.addEventListener("hashchange", forwardHashLink);
  document.addEventListener("htmx:responseError", showError);
  document.addEventListener("DOMContentLoaded", function () {
    drawCharts(document);
    if (window.htmx) {
      htmx.onLoad(function (el) { drawCharts(el); });
    }
  });
})();
