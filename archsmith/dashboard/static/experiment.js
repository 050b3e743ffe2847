// One experiment: its summary, the trial table (sort, filter by status and by decision
// values, pages), the figures, and the download of the top-k samples. While the run is
// live, the page asks for what changed every POLL_MS and merges it without a reload.
"use strict";

const STATUSES = ["waiting", "running", "succeeded", "failed", "stopped"];
const FIGURES = ["history", "curves", "parallel", "importance", "pareto", "oneshot_curves", "oneshot_probabilities"];
const PAGE_SIZE = 50;
const IDLE_POLL_MS = 10000; // a finished experiment is looked at now and then, in case it is resumed

const KEY = pathParts().key;
const state = {
  summary: null,
  trials: new Map(), // id -> TRIAL
  version: null,
  sort: { column: "id", descending: false },
  filters: { status: "", decisions: {} }, // decisions: label -> {kind, value | low/high}
  page: 0,
};

// ---- summary ---------------------------------------------------------------------------

function field(name, ...value) {
  return el("div", { className: "field" }, el("span", { className: "field-name" }, name), el("span", { className: "field-value" }, ...value));
}

function renderSummary() {
  const s = state.summary;
  document.title = "archsmith: " + (s.name || s.key);
  clear(document.getElementById("crumb")).appendChild(document.createTextNode(s.name || s.key));
  const counts = s.counts || {};
  const objectives = (s.objectives || []).map((o) => `${o.name} (${o.direction})`).join(", ");
  const best = s.best
    ? [el("a", { href: trialUrl(KEY, s.best.trial) }, `trial ${s.best.trial}`), ": " + objectiveText(s.best.values, s.objectives || [])]
    : ["none yet"];
  const countText = STATUSES.filter((st) => counts[st]).map((st) => `${counts[st]} ${st}`).join(", ") || "no trials yet";
  const kept = document.getElementById("top-k"); // redrawn on every poll: keep what the user typed
  const k = el("input", { type: "number", id: "top-k", min: "1", max: "1000", value: kept ? kept.value : "5", className: "small-input" });
  const link = el("a", { id: "download-top", className: "button", download: "" }, "Download top-k (JSON)");
  const setHref = () => {
    const n = Math.max(1, parseInt(k.value, 10) || 5);
    link.setAttribute("href", `/api/experiments/${encodeURIComponent(KEY)}/top?k=${n}`);
  };
  k.addEventListener("input", setHref);
  setHref();
  clear(document.getElementById("summary")).appendChild(
    el(
      "div",
      {},
      el("h1", {}, s.name || s.key, " ", badge(s.status), s.live ? el("span", { className: "live" }, "live") : ""),
      el(
        "div",
        { className: "fields" },
        field("Strategy", s.strategy || "—"),
        field("Engine", s.engine || "—"),
        field("Objectives", objectives || "—"),
        field("Trials", countText, s.max_trials ? ` (of at most ${s.max_trials})` : ""),
        field("Best", ...best),
        field("Started", fmtTime(s.started) || "—"),
        s.oneshot ? field("Kind", "one-shot") : null
      ),
      el("div", { className: "download" }, el("label", { htmlFor: "top-k" }, "k "), k, " ", link)
    )
  );
}

// ---- trial table -----------------------------------------------------------------------

function columns() {
  const s = state.summary;
  const cols = [
    { id: "id", title: "Trial", value: (t) => t.id },
    { id: "status", title: "Status", value: (t) => t.status },
  ];
  for (const o of s.objectives || []) cols.push({ id: "obj:" + o.name, title: o.name, numeric: true, value: (t) => (t.objectives ? t.objectives[o.name] : undefined) });
  for (const d of s.decisions || []) cols.push({ id: "dec:" + d.label, title: d.label, decision: true, value: (t) => (t.sample ? t.sample[d.label] : undefined) });
  cols.push({ id: "duration", title: "Duration", numeric: true, value: (t) => t.duration });
  cols.push({ id: "steps", title: "Steps", numeric: true, value: (t) => t.steps });
  cols.push({ id: "started", title: "Started", numeric: true, value: (t) => t.started });
  return cols;
}

function compare(a, b) {
  const missingA = a === null || a === undefined;
  const missingB = b === null || b === undefined;
  if (missingA || missingB) return missingA === missingB ? 0 : missingA ? 1 : -1; // missing last
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(fmtValue(a)).localeCompare(String(fmtValue(b)), undefined, { numeric: true });
}

function valueKey(value) {
  return JSON.stringify(value);
}

function passes(trial) {
  const f = state.filters;
  if (f.status && trial.status !== f.status) return false;
  for (const [label, rule] of Object.entries(f.decisions)) {
    const value = trial.sample ? trial.sample[label] : undefined;
    if (rule.kind === "categorical" && rule.value !== "" && valueKey(value) !== rule.value) return false;
    if (rule.kind === "numerical") {
      if (rule.low !== "" && !(value >= Number(rule.low))) return false;
      if (rule.high !== "" && !(value <= Number(rule.high))) return false;
    }
  }
  return true;
}

function visibleTrials(cols) {
  const column = cols.find((c) => c.id === state.sort.column) || cols[0];
  const rows = Array.from(state.trials.values()).filter(passes);
  const sign = state.sort.descending ? -1 : 1;
  rows.sort((a, b) => {
    const va = column.value(a);
    const vb = column.value(b);
    const missing = (va === null || va === undefined) - (vb === null || vb === undefined);
    if (missing !== 0) return missing; // missing values last, whichever the direction
    return sign * compare(va, vb) || a.id - b.id;
  });
  return rows;
}

function renderFilters() {
  const s = state.summary;
  const box = clear(document.getElementById("filters"));
  const status = el("select", { id: "filter-status", "aria-label": "status" }, el("option", { value: "" }, "any status"), STATUSES.map((st) => el("option", { value: st }, st)));
  status.value = state.filters.status;
  status.addEventListener("change", () => {
    state.filters.status = status.value;
    state.page = 0;
    renderTable();
  });
  box.appendChild(el("label", { className: "filter" }, "Status ", status));
  (s.decisions || []).forEach((d, i) => {
    if (d.kind === "numerical") {
      const rule = (state.filters.decisions[d.label] = state.filters.decisions[d.label] || { kind: "numerical", low: "", high: "" });
      const low = el("input", { type: "number", step: "any", className: "small-input", placeholder: fmtValue(d.values[0]), dataset: { decision: String(i), bound: "low" } });
      const high = el("input", { type: "number", step: "any", className: "small-input", placeholder: fmtValue(d.values[1]), dataset: { decision: String(i), bound: "high" } });
      low.value = rule.low;
      high.value = rule.high;
      const update = () => {
        rule.low = low.value;
        rule.high = high.value;
        state.page = 0;
        renderTable();
      };
      low.addEventListener("input", update);
      high.addEventListener("input", update);
      box.appendChild(el("label", { className: "filter" }, d.label + " ", low, " to ", high));
    } else {
      const rule = (state.filters.decisions[d.label] = state.filters.decisions[d.label] || { kind: "categorical", value: "" });
      const select = el("select", { dataset: { decision: String(i) } }, el("option", { value: "" }, "any"), d.values.map((v) => el("option", { value: valueKey(v) }, fmtValue(v))));
      select.value = rule.value;
      select.addEventListener("change", () => {
        rule.value = select.value;
        state.page = 0;
        renderTable();
      });
      box.appendChild(el("label", { className: "filter" }, d.label + " ", select));
    }
  });
}

function renderTable() {
  const cols = columns();
  const table = document.getElementById("trials");
  const head = clear(table.tHead);
  head.appendChild(
    el(
      "tr",
      {},
      cols.map((c) => {
        const arrow = state.sort.column === c.id ? (state.sort.descending ? " ▼" : " ▲") : "";
        return el(
          "th",
          {
            className: "sortable" + (c.numeric ? " num" : ""),
            dataset: { column: c.id },
            title: "sort by " + c.title,
            onclick: () => {
              state.sort = { column: c.id, descending: state.sort.column === c.id ? !state.sort.descending : false };
              renderTable();
            },
          },
          c.title,
          arrow
        );
      })
    )
  );
  const rows = visibleTrials(cols);
  const pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
  state.page = Math.min(state.page, pages - 1);
  const shown = rows.slice(state.page * PAGE_SIZE, (state.page + 1) * PAGE_SIZE);
  const body = clear(table.tBodies[0]);
  for (const t of shown) {
    body.appendChild(
      el(
        "tr",
        { dataset: { trial: String(t.id), status: t.status } },
        cols.map((c) => {
          const v = c.value(t);
          if (c.id === "id") return el("td", { className: "num" }, el("a", { href: trialUrl(KEY, t.id) }, String(t.id)));
          if (c.id === "status") return el("td", { title: t.error || "" }, badge(t.status));
          if (c.id === "duration") return el("td", { className: "num" }, fmtDuration(v));
          if (c.id === "started") return el("td", {}, fmtTime(v));
          return el("td", { className: c.numeric ? "num" : "" }, v === undefined || v === null ? "" : fmtValue(v));
        })
      )
    );
  }
  document.getElementById("trial-count").textContent = rows.length === state.trials.size ? `(${rows.length})` : `(${rows.length} of ${state.trials.size} shown by the filters)`;
  const pager = clear(document.getElementById("pager"));
  if (pages > 1) {
    const go = (page) => () => {
      state.page = page;
      renderTable();
    };
    pager.appendChild(el("button", { type: "button", disabled: state.page === 0, onclick: go(state.page - 1) }, "‹ previous"));
    pager.appendChild(el("span", { className: "muted" }, ` page ${state.page + 1} of ${pages} `));
    pager.appendChild(el("button", { type: "button", disabled: state.page >= pages - 1, onclick: go(state.page + 1) }, "next ›"));
  }
}

// ---- figures ---------------------------------------------------------------------------
// A figure is fetched and drawn when it scrolls into view, and again after the trials
// change while it is in view: a long page of WebGL plots costs only what is looked at.

const figures = new Map(FIGURES.map((name) => [name, { visible: false, drawn: null, pending: false }]));

async function drawOne(name) {
  const fig = figures.get(name);
  if (fig.pending) return;
  fig.pending = true;
  const div = document.getElementById("fig-" + name);
  const version = state.version;
  try {
    drawFigure(div, await api(`/experiments/${encodeURIComponent(KEY)}/figures/${name}`));
    fig.drawn = version;
  } catch (error) {
    showError(div, "This figure cannot be drawn", error);
    delete div.dataset.plotted;
    fig.drawn = null;
  } finally {
    fig.pending = false;
    div.dataset.version = String(fig.drawn);
  }
  if (fig.visible && fig.drawn !== state.version) drawOne(name); // the trials changed meanwhile
}

function refreshFigures() {
  for (const [name, fig] of figures) if (fig.visible && fig.drawn !== state.version) drawOne(name);
}

function watchFigures() {
  const observer = new IntersectionObserver(
    (entries) => {
      for (const entry of entries) {
        const fig = figures.get(entry.target.id.slice("fig-".length));
        fig.visible = entry.isIntersecting;
      }
      refreshFigures();
    },
    { rootMargin: "0px" }
  );
  for (const name of FIGURES) observer.observe(document.getElementById("fig-" + name));
}

// ---- loading and live updates ----------------------------------------------------------

function merge(answer) {
  if (answer.complete) state.trials = new Map();
  for (const t of answer.trials) state.trials.set(t.id, t);
  state.version = answer.version;
  return answer.complete || answer.trials.length > 0;
}

function banner(error) {
  const box = clear(document.getElementById("banner"));
  if (error) box.appendChild(errorPanel("The latest update failed; retrying", error));
}

async function poll() {
  try {
    const since = state.version === null ? "" : "?since=" + encodeURIComponent(state.version);
    const changed = merge(await api(`/experiments/${encodeURIComponent(KEY)}/trials${since}`));
    // The summary too: the run's end (live no more) need not come with a trial's change.
    state.summary = await api(`/experiments/${encodeURIComponent(KEY)}`);
    renderSummary();
    if (changed) {
      renderTable();
      refreshFigures();
    }
    banner(null);
  } catch (error) {
    banner(error);
  }
  setTimeout(poll, state.summary.live ? POLL_MS : IDLE_POLL_MS);
}

async function load() {
  try {
    state.summary = await api(`/experiments/${encodeURIComponent(KEY)}`);
    merge(await api(`/experiments/${encodeURIComponent(KEY)}/trials`));
  } catch (error) {
    showError(document.getElementById("content"), `The experiment ${KEY} cannot be shown`, error);
    return;
  }
  renderSummary();
  document.getElementById("trials-section").hidden = false;
  document.getElementById("figures").hidden = false;
  renderFilters();
  renderTable();
  watchFigures();
  document.body.dataset.loaded = "1";
  setTimeout(poll, state.summary.live ? POLL_MS : IDLE_POLL_MS);
}

load();
