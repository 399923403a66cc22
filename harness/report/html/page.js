// The report page's script: the matrix, and one ECharts canvas for the timeline of a run (or of
// two runs of one scenario on one time axis). Data comes from the JSON block the report wrote;
// nothing is fetched. Events are drawn on a canvas, so an hour-long run adds no DOM nodes.
/* global echarts */
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("report-data").textContent);
  var STYLE_LOOK = {
    "admin": ["#0969da", "rect", 12], "admin failed": ["#cf222e", "rect", 12],
    "request": ["#1a7f37", "triangle", 12], "request failed": ["#cf222e", "triangle", 12],
    "tick": ["#8c959f", "circle", 5], "tick failed": ["#cf222e", "circle", 9],
    "checker created": ["#1a7f37", "diamond", 13], "checker kept": ["#0969da", "diamond", 13],
    "checker rebuilt": ["#bf8700", "diamond", 13], "checker destroyed": ["#cf222e", "diamond", 13],
    "probe ok": ["#4ac26b", "circle", 5], "probe failed": ["#fa4549", "circle", 6],
    "healthy": ["#1a7f37", "pin", 18], "unhealthy": ["#cf222e", "pin", 18],
    "warn": ["#bf8700", "rect", 8], "error": ["#cf222e", "rect", 10],
    "bug assertion held": ["#8250df", "arrow", 16], "assertion failed": ["#cf222e", "arrow", 16],
    "bug assertion not held": ["#8c959f", "arrow", 14], "step": ["#57606a", "emptyCircle", 9]
  };
  var chart = null;
  var current = [];
  var api = { data: D, rendered: null, chart: function () { return chart; }, rows: [], runs: current };
  window.harnessReport = api;

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function esc(s) {
    return String(s).replace(/[&<>"]/g, function (c) { return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]; });
  }
  function verdictClass(r) { return r.met ? "met" : r.outcome === "skipped" ? "skipped" : r.outcome === "error" ? "error" : "unmet"; }
  function fmtTime(ms) {
    var s = ms / 1000;
    if (Math.abs(s) < 120) return (Math.round(s * 10) / 10) + " s";
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = Math.floor(s % 60);
    return (h ? h + ":" + String(m).padStart(2, "0") : m) + ":" + String(sec).padStart(2, "0");
  }
  function fmtExact(ms) { return (ms / 1000).toFixed(3) + " s"; }
  function rank(key) {
    var i = D.laneOrder.indexOf(key.split(" · ")[0]);
    return i < 0 ? D.laneOrder.length : i;
  }

  function renderMatrix() {
    var table = document.getElementById("matrix");
    var head = el("tr");
    head.appendChild(el("th", null, "Scenario"));
    D.columns.forEach(function (c) { head.appendChild(el("th", null, c)); });
    table.appendChild(head);
    D.scenarios.forEach(function (s, si) {
      var tr = el("tr");
      var td = el("td", { "class": "scenario" });
      td.appendChild(document.createTextNode(s.label));
      var runs = D.runs.map(function (r, i) { return i; }).filter(function (i) { return D.runs[i].scenario === si; });
      if (runs.length > 1) {
        var pair = defaultPair(runs);
        td.appendChild(el("a", { "class": "compare", href: "#cmp=" + pair.join(",") }, "compare"));
      }
      td.appendChild(el("span", { "class": "file" }, s.file));
      tr.appendChild(td);
      D.columns.forEach(function (c) {
        var ri = runs.filter(function (i) { return D.runs[i].column === c; })[0];
        if (ri === undefined) { tr.appendChild(el("td", null, "–")); return; }
        var r = D.runs[ri];
        var cell = el("td", { "class": "cell " + verdictClass(r) + " " + r.outcome, "data-run": String(ri), "data-scenario": s.file, "data-column": c });
        cell.appendChild(el("a", { href: "#run=" + ri, title: "expected " + r.expected }, r.outcome));
        if (!r.met && r.outcome !== "skipped") cell.appendChild(el("div", { "class": "expected" }, "expected " + r.expected));
        tr.appendChild(cell);
      });
      table.appendChild(tr);
    });
  }

  // Two runs worth comparing: one that shows the bug and one that does not, else the first two.
  function defaultPair(runIdx) {
    var bug = runIdx.filter(function (i) { return D.runs[i].outcome === "reproduces"; })[0];
    var fine = runIdx.filter(function (i) { return D.runs[i].outcome !== "reproduces"; }).pop();
    if (bug !== undefined && fine !== undefined) return [bug, fine];
    return runIdx.slice(0, 2);
  }

  function buildOption(runIdx) {
    var runs = runIdx.map(function (i) { return D.runs[i]; });
    var keys = [];
    runs.forEach(function (r) { r.lanes.lanes.forEach(function (k) { if (keys.indexOf(k) < 0) keys.push(k); }); });
    keys = keys.map(function (k, i) { return [k, i]; }).sort(function (a, b) { return rank(a[0]) - rank(b[0]) || a[1] - b[1]; }).map(function (x) { return x[0]; });
    // Rows: each lane key once per run, the runs' rows next to each other.
    var rows = [];
    var rowOf = runs.map(function () { return {}; });
    keys.forEach(function (k) {
      runs.forEach(function (r, p) {
        rowOf[p][k] = rows.length;
        rows.push(runs.length > 1 ? r.column + " │ " + k : k);
      });
    });
    var byStyle = {};
    var lifetimes = [];
    var end = 0;
    runs.forEach(function (r, p) {
      var L = r.lanes;
      end = Math.max(end, L.end);
      for (var k = 0; k < L.points.length; k += 4) {
        var style = D.styles[L.points[k + 2]];
        (byStyle[style] = byStyle[style] || []).push([L.points[k], rowOf[p][L.lanes[L.points[k + 1]]], p, L.points[k + 3]]);
      }
      for (var s = 0; s < L.spans.length; s += 4) {
        var row = rowOf[p][L.lanes[L.spans[s + 2]]];
        lifetimes.push([L.spans[s], row, p, L.spans[s + 3]], [L.spans[s + 1], row, p, L.spans[s + 3]], "-");
      }
    });
    var series = [{
      name: "checker lifetime", type: "line", data: lifetimes, showSymbol: false, connectNulls: false, silent: false,
      lineStyle: { width: 8, opacity: 0.3, color: "#1a7f37" }, z: 1, animation: false,
      markLine: {
        symbol: "none", silent: true, animation: false, lineStyle: { color: "#8250df", type: "dashed" },
        label: { formatter: "{b}", position: "insideEndTop", color: "#8250df" },
        data: [].concat.apply([], runs.map(function (r) { return r.lanes.marks.map(function (m) { return { name: m[1], xAxis: m[0] }; }); }))
          .filter(function (m, i, all) { return all.findIndex(function (o) { return o.name === m.name && o.xAxis === m.xAxis; }) === i; })
      }
    }];
    D.styles.forEach(function (style) {
      var data = byStyle[style];
      if (!data) return;
      var look = STYLE_LOOK[style];
      series.push({
        id: style, name: style, type: "scatter", data: data, symbol: look[1], symbolSize: look[2], z: 3,
        itemStyle: { color: look[0] }, large: data.length > 2000, largeThreshold: 2000, animation: false,
        symbolRotate: style.indexOf("assertion") >= 0 ? 180 : 0
      });
    });
    var focus = initialWindow(runs, end);
    api.rows = rows;
    return {
      animation: false,
      grid: { left: 16, right: 24, top: 56, bottom: 64, containLabel: true },
      legend: { type: "scroll", top: 0, data: series.map(function (s) { return s.name; }) },
      tooltip: {
        trigger: "item", confine: true, enterable: false,
        formatter: function (p) {
          if (!Array.isArray(p.data)) return "";
          var text = runs[p.data[2]].lanes.details[p.data[3]] || "";
          var head = "<b>" + (runs.length > 1 ? esc(runs[p.data[2]].column) + " · " : "") + "at " + esc(fmtExact(p.data[0])) + "</b><br>";
          return head + '<div style="white-space:pre-wrap;max-width:560px">' + esc(text.length > 700 ? text.slice(0, 700) + " …" : text) + "</div>";
        }
      },
      xAxis: { type: "value", min: 0, max: Math.max(end, 1000), axisLabel: { formatter: fmtTime }, name: D.clockNote[runs[0].lanes.clock], nameLocation: "middle", nameGap: 28, splitLine: { lineStyle: { color: "#eaeef2" } } },
      yAxis: { type: "category", data: rows, inverse: true, axisLabel: { fontSize: 11 }, splitLine: { show: true, lineStyle: { color: "#f0f2f4" } } },
      dataZoom: [
        { type: "inside", xAxisIndex: 0, filterMode: "none", startValue: focus[0], endValue: focus[1] },
        { type: "slider", xAxisIndex: 0, filterMode: "none", bottom: 8, height: 18, labelFormatter: function (v) { return fmtTime(v); }, startValue: focus[0], endValue: focus[1] }
      ],
      series: series
    };
  }

  // A long run opens on the minute around its first failure; the slider and the wheel zoom out.
  function initialWindow(runs, end) {
    if (end <= 10 * 60 * 1000) return [0, Math.max(end, 1000)];
    var first = Infinity;
    runs.forEach(function (r) {
      var L = r.lanes;
      for (var k = 0; k < L.points.length; k += 4) {
        var style = D.styles[L.points[k + 2]];
        if (style === "error" || style === "tick failed" || style === "assertion failed") { first = Math.min(first, L.points[k]); break; }
      }
    });
    var start = first === Infinity ? 0 : Math.max(0, first - 10000);
    return [start, Math.min(end, start + 60000)];
  }

  function showRuns(runIdx, hash) {
    var view = document.getElementById("view");
    view.hidden = false;
    current.length = 0;
    runIdx.forEach(function (i) { current.push(i); });
    document.querySelectorAll("td.cell.selected").forEach(function (c) { c.classList.remove("selected"); });
    runIdx.forEach(function (i) { var c = document.querySelector('td.cell[data-run="' + i + '"]'); if (c) c.classList.add("selected"); });
    var runs = runIdx.map(function (i) { return D.runs[i]; });
    var s = D.scenarios[runs[0].scenario];
    var head = document.getElementById("view-head");
    head.textContent = "";
    head.appendChild(el("h2", null, s.label));
    runs.forEach(function (r) {
      head.appendChild(el("span", { "class": "verdict " + verdictClass(r) }, r.column + ": " + r.outcome + (r.met || r.outcome === "skipped" ? "" : " (expected " + r.expected + ")")));
    });
    // Compare with: the scenario's other runs.
    var others = D.runs.map(function (r, i) { return i; }).filter(function (i) { return D.runs[i].scenario === runs[0].scenario && i !== runIdx[0]; });
    if (others.length) {
      var sel = el("select", { id: "compare-with" });
      sel.appendChild(el("option", { value: "" }, "compare with…"));
      others.forEach(function (i) {
        var o = el("option", { value: String(i) }, D.runs[i].column + " (" + D.runs[i].outcome + ")");
        if (runIdx[1] === i) o.selected = true;
        sel.appendChild(o);
      });
      sel.addEventListener("change", function () { location.hash = sel.value ? "cmp=" + runIdx[0] + "," + sel.value : "run=" + runIdx[0]; });
      head.appendChild(sel);
    }
    var notes = document.getElementById("view-notes");
    notes.textContent = "";
    runs.forEach(function (r) {
      if (r.failure) notes.appendChild(el("p", { "class": "note" }, r.column + ": " + r.failure));
      if (r.lanes.clock === "steps") notes.appendChild(el("p", { "class": "note" }, r.column + ": the " + r.target + " target recorded no timeline; the lanes show the scenario's steps and assertions only."));
      else if (!r.lanes.lanes.some(function (k) { return /^(tick|checker|target)/.test(k); })) notes.appendChild(el("p", { "class": "note" }, r.column + ": the " + (r.engine || "model") + " engine reported no manager ticks, checkers or probes for this run; the lanes show what the gateway saw (admin writes, requests, log lines) and the assertions."));
    });
    var container = document.getElementById("chart");
    var option = buildOption(runIdx);
    container.style.height = Math.max(220, api.rows.length * 24 + 130) + "px";
    if (chart) chart.dispose();
    chart = echarts.init(container, null, { renderer: "canvas" });
    chart.setOption(option);
    chart.on("click", function (p) {
      if (!Array.isArray(p.data)) return;
      var r = runs[p.data[2]];
      document.getElementById("detail").textContent = (runs.length > 1 ? r.column + " · " : "") + "at " + fmtExact(p.data[0]) + "\n" + (r.lanes.details[p.data[3]] || "");
    });
    document.getElementById("detail").textContent = "Hover a mark for its details; click it to keep them here. Scroll or drag the slider to zoom.";
    var steps = document.getElementById("steps");
    steps.textContent = "";
    runs[0].steps.forEach(function (st) {
      steps.appendChild(el("li", { "class": st.ok ? (st.bug ? "bug" : "") : "failed" }, fmtTime(st.t) + "  " + st.text));
    });
    document.getElementById("steps-title").textContent = "Steps" + (runs.length > 1 ? " (" + runs[0].column + ")" : "");
    api.rendered = hash;
  }

  function route() {
    var h = location.hash.replace(/^#/, "");
    var m = /^run=(\d+)$/.exec(h), c = /^cmp=(\d+),(\d+)$/.exec(h);
    if (m && D.runs[+m[1]]) return showRuns([+m[1]], h);
    if (c && D.runs[+c[1]] && D.runs[+c[2]]) return showRuns([+c[1], +c[2]], h);
    if (!D.runs.length) return;
    var failing = D.runs.findIndex(function (r) { return !r.met && r.outcome !== "skipped"; });
    if (failing >= 0) return showRuns([failing], "run=" + failing);
    var first = D.runs.map(function (r, i) { return i; }).filter(function (i) { return D.runs[i].scenario === 0; });
    var pair = first.length > 1 ? defaultPair(first) : [0];
    showRuns(pair, pair.length > 1 ? "cmp=" + pair.join(",") : "run=0");
  }

  renderMatrix();
  window.addEventListener("hashchange", route);
  window.addEventListener("resize", function () { if (chart) chart.resize(); });
  route();
})();
