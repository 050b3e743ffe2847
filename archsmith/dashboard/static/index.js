// The experiments list: one row per experiment under the dashboard's directory,
// refreshed while any of them is live.
"use strict";

const COLUMNS = ["Name", "Status", "Strategy", "Done", "Failed", "Total", "Best", "Started", "Live"];

function experimentRow(summary) {
  const link = el("a", { href: experimentUrl(summary.key) }, summary.name || summary.key);
  if (summary.error) {
    return el(
      "tr",
      { className: "row-error", dataset: { key: summary.key } },
      el("td", {}, link),
      el("td", {}, badge("unreadable")),
      el("td", { colSpan: COLUMNS.length - 2 }, el("span", { className: "error-text" }, summary.error))
    );
  }
  const counts = summary.counts || {};
  const best = summary.best
    ? el("a", { href: trialUrl(summary.key, summary.best.trial) }, objectiveText(summary.best.values, summary.objectives || []), ` (trial ${summary.best.trial})`)
    : "";
  const total = summary.max_trials ? `${counts.total} / ${summary.max_trials}` : String(counts.total);
  return el(
    "tr",
    { dataset: { key: summary.key } },
    el("td", {}, link),
    el("td", {}, badge(summary.status)),
    // The strategy's class in the list; its arguments on hover and on the experiment's page.
    el("td", { title: summary.strategy || "" }, (summary.strategy || "").split("(")[0]),
    el("td", { className: "num" }, String(counts.succeeded || 0)),
    el("td", { className: "num" }, String(counts.failed || 0)),
    el("td", { className: "num nowrap" }, total),
    el("td", {}, best),
    el("td", { className: "nowrap" }, fmtTime(summary.started)),
    el("td", {}, summary.live ? el("span", { className: "live" }, "live") : "")
  );
}

function render(answer) {
  document.getElementById("root").textContent = "Directory: " + answer.root;
  const content = clear(document.getElementById("content"));
  if (answer.experiments.length === 0) {
    content.appendChild(el("p", { className: "empty" }, "No experiment under this directory yet: run one with archsmith, or point the dashboard at the directory that holds them."));
    return;
  }
  const table = el(
    "table",
    { id: "experiments", className: "grid" },
    el("thead", {}, el("tr", {}, COLUMNS.map((c) => el("th", {}, c)))),
    el("tbody", {}, answer.experiments.map(experimentRow))
  );
  content.appendChild(table);
}

async function refresh() {
  let answer;
  try {
    answer = await api("/experiments");
  } catch (error) {
    showError(document.getElementById("content"), "The experiments cannot be listed", error);
    setTimeout(refresh, POLL_MS * 2);
    return;
  }
  render(answer);
  document.body.dataset.loaded = "1";
  if (answer.experiments.some((s) => s.live)) setTimeout(refresh, POLL_MS);
}

refresh();
