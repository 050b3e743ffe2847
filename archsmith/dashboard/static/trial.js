// One trial: its sample, metrics, curve, output tail and architecture (module tree with
// parameter counts; cells drawn as graphs). While it waits or runs, it is asked for again
// every POLL_MS.
"use strict";

const { key: KEY, trial: TRIAL } = pathParts();
let archDrawn = false;

// Plotly reads a subset of HTML in its text: user strings go in escaped, shown as typed.
function plotText(text) {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function kvRows(tbody, entries, empty) {
  clear(tbody);
  if (entries.length === 0) tbody.appendChild(el("tr", {}, el("td", { className: "muted", colSpan: 2 }, empty)));
  for (const [name, value] of entries) tbody.appendChild(el("tr", {}, el("th", {}, name), el("td", { className: typeof value === "number" ? "num" : "" }, fmtValue(value))));
}

function renderSummary(t, experiment) {
  document.title = `archsmith: trial ${t.id}`;
  const exp = document.getElementById("crumb-experiment");
  exp.setAttribute("href", experimentUrl(KEY));
  exp.textContent = experiment ? experiment.name || KEY : KEY;
  document.getElementById("crumb").textContent = `trial ${t.id}`;
  const objectives = experiment ? experiment.objectives : Object.keys(t.objectives || {}).map((name) => ({ name }));
  clear(document.getElementById("summary")).appendChild(
    el(
      "div",
      {},
      el("h1", {}, `Trial ${t.id} `, badge(t.status)),
      el(
        "div",
        { className: "fields" },
        el("div", { className: "field" }, el("span", { className: "field-name" }, "Objective"), el("span", { className: "field-value" }, objectiveText(t.objectives, objectives) || "—")),
        el("div", { className: "field" }, el("span", { className: "field-name" }, "Started"), el("span", { className: "field-value" }, fmtTime(t.started) || "—")),
        el("div", { className: "field" }, el("span", { className: "field-name" }, "Ended"), el("span", { className: "field-value" }, fmtTime(t.ended) || "—")),
        el("div", { className: "field" }, el("span", { className: "field-name" }, "Duration"), el("span", { className: "field-value" }, fmtDuration(t.duration) || "—")),
        el("div", { className: "field" }, el("span", { className: "field-name" }, "Steps"), el("span", { className: "field-value" }, String(t.steps)))
      )
    )
  );
}

function renderCurve(t) {
  const div = document.getElementById("fig-curve");
  const names = [];
  for (const point of t.intermediates || []) for (const name of Object.keys(point.metrics)) if (!names.includes(name)) names.push(name);
  if (names.length === 0) {
    drawFigure(div, { figure: null, message: "This trial reported no intermediate results." });
    return;
  }
  const data = names.map((name) => {
    const points = t.intermediates.filter((p) => name in p.metrics);
    return { type: "scatter", mode: "lines+markers", name: plotText(name), x: points.map((p) => p.step), y: points.map((p) => p.metrics[name]) };
  });
  const steps = new Set(t.intermediates.map((p) => p.step)).size;
  const xaxis = { title: { text: "step" }, dtick: steps <= 20 ? 1 : undefined }; // steps are whole numbers
  const layout = { margin: { t: 20, r: 20, b: 50, l: 60 }, xaxis, height: 320, showlegend: true };
  drawFigure(div, { figure: { data, layout } });
}

function renderArchitecture(arch) {
  const box = clear(document.getElementById("architecture"));
  if (!arch) return;
  if (arch.error) box.appendChild(el("p", { className: "figure-message" }, arch.error));
  if (arch.total_params !== null && arch.total_params !== undefined) box.appendChild(el("p", {}, "Parameters: ", el("strong", {}, arch.total_params.toLocaleString("en-US"))));
  if (arch.modules && arch.modules.length) {
    const rows = arch.modules.map((m) =>
      el(
        "tr",
        {},
        el("td", { className: "tree", style: `padding-left: ${0.4 + 1.2 * m.depth}em` }, m.path.split(".").pop() || m.path),
        el("td", {}, m.type),
        el("td", { className: "num" }, m.params === null || m.params === undefined ? "" : m.params.toLocaleString("en-US")),
        el("td", { className: "muted" }, m.path)
      )
    );
    box.appendChild(
      el("div", { className: "table-wrap tree-wrap" }, el("table", { id: "modules", className: "grid" }, el("thead", {}, el("tr", {}, el("th", {}, "Module"), el("th", {}, "Type"), el("th", { className: "num" }, "Parameters"), el("th", {}, "Path"))), el("tbody", {}, rows)))
    );
  }
  for (const cell of arch.cells || []) {
    const div = el("div", { className: "plot cell-plot" });
    box.appendChild(el("div", { className: "figure" }, el("h3", {}, "Cell ", cell.label), div));
    drawFigure(div, { figure: cell.figure });
  }
}

function render(t, experiment) {
  renderSummary(t, experiment);
  kvRows(document.querySelector("#sample tbody"), Object.entries(t.sample || {}), "no sample");
  const metrics = Object.entries(t.metrics || {});
  kvRows(document.querySelector("#metrics tbody"), metrics, t.status === "failed" ? "none: the trial failed" : "none reported yet");
  const errorSection = document.getElementById("error-section");
  errorSection.hidden = !t.error;
  document.getElementById("error").textContent = t.error || "";
  renderCurve(t);
  document.getElementById("log").textContent = t.log_tail || "(no output)";
  if (!archDrawn) {
    renderArchitecture(t.architecture);
    archDrawn = true;
  }
}

async function load(experiment) {
  const running = (t) => t.status === "waiting" || t.status === "running";
  try {
    const t = await api(`/experiments/${encodeURIComponent(KEY)}/trials/${encodeURIComponent(TRIAL)}`);
    render(t, experiment);
    clear(document.getElementById("banner"));
    document.body.dataset.loaded = "1";
    if (running(t)) setTimeout(() => load(experiment), POLL_MS);
  } catch (error) {
    if (!document.body.dataset.loaded) showError(document.getElementById("content"), `Trial ${TRIAL} of ${KEY} cannot be shown`, error);
    else {
      clear(document.getElementById("banner")).appendChild(errorPanel("The latest update failed; retrying", error));
      setTimeout(() => load(experiment), POLL_MS);
    }
  }
}

(async () => {
  let experiment = null;
  try {
    experiment = await api(`/experiments/${encodeURIComponent(KEY)}`);
  } catch (error) {
    showError(document.getElementById("content"), `The experiment ${KEY} cannot be shown`, error);
    return;
  }
  await load(experiment);
})();
