// Shared by the pages: fetching the API, building DOM nodes, formatting values.
// User strings (labels, candidate names, error texts, logs) enter the DOM only as
// text (textContent / createTextNode), never as HTML.
"use strict";

const POLL_MS = 2000;

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function api(path) {
  const response = await fetch("/api" + path, { headers: { Accept: "application/json" } });
  let body = null;
  try {
    body = await response.json();
  } catch (e) {
    body = null;
  }
  if (!response.ok) {
    const detail = body && typeof body.detail === "string" ? body.detail : response.status + " " + response.statusText;
    throw new ApiError(response.status, detail);
  }
  return body;
}

// el("td", {className: "num", title: "x"}, "text", otherNode, ...): children that are
// not nodes become text nodes.
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "onclick" || name === "onchange" || name === "oninput") node.addEventListener(name.slice(2), value);
    else if (name in node && name !== "href") node[name] = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) append(node, child);
  return node;
}

function append(node, child) {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) child.forEach((c) => append(node, c));
  else node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

function fmtNumber(value) {
  if (value === null || value === undefined) return "";
  if (typeof value !== "number") return String(value);
  if (!isFinite(value)) return String(value);
  if (Number.isInteger(value)) return String(value);
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) return value.toExponential(3);
  return String(Number(value.toPrecision(5)));
}

function fmtValue(value) {
  if (typeof value === "number") return fmtNumber(value);
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}

function fmtTime(unix) {
  if (unix === null || unix === undefined) return "";
  const d = new Date(unix * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 60) return seconds.toFixed(seconds < 10 ? 2 : 1) + " s";
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds % 60);
  if (m < 60) return `${m} min ${s} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

function badge(status) {
  return el("span", { className: "status status-" + String(status).replace(/[^a-z]/g, "") }, status);
}

// An error panel in place of a page's content: what went wrong, as the server said it.
function errorPanel(title, error) {
  const detail = error instanceof ApiError ? error.message : String(error && error.message ? error.message : error);
  return el("div", { className: "error-panel", role: "alert" }, el("strong", {}, title), el("pre", {}, detail));
}

function showError(container, title, error) {
  clear(container).appendChild(errorPanel(title, error));
}

function objectiveText(values, objectives) {
  if (!values) return "";
  return objectives
    .filter((o) => o.name in values)
    .map((o) => (objectives.length > 1 ? o.name + " " : "") + fmtNumber(values[o.name]))
    .join(", ");
}

// A page's key and trial id from its URL (/experiments/{key}[/trials/{id}]).
function pathParts() {
  const parts = window.location.pathname.split("/").filter((p) => p.length > 0).map(decodeURIComponent);
  return { key: parts[1], trial: parts[3] };
}

function experimentUrl(key) {
  return "/experiments/" + encodeURIComponent(key);
}

function trialUrl(key, id) {
  return experimentUrl(key) + "/trials/" + encodeURIComponent(id);
}

const PLOT_CONFIG = { responsive: true, displaylogo: false };

// Draws a FIGURE from the API (or a message when it does not apply) into `div`.
function drawFigure(div, answer) {
  if (!answer || !answer.figure) {
    if (div.dataset.plotted) Plotly.purge(div);
    delete div.dataset.plotted;
    clear(div).appendChild(el("p", { className: "figure-message" }, (answer && answer.message) || "Nothing to draw yet."));
    return;
  }
  if (!div.dataset.plotted) clear(div);
  // The section's heading names the figure: its own title would only take room.
  const layout = Object.assign({ autosize: true, height: 360 }, answer.figure.layout || {}, { title: undefined });
  // Parallel coordinates write their axis names above the plot: they keep room for them.
  const parcoords = (answer.figure.data || []).some((trace) => trace.type === "parcoords");
  layout.margin = Object.assign({ l: 60, r: 30, b: 50 }, layout.margin || {}, { t: parcoords ? 80 : 30 });
  Plotly.react(div, answer.figure.data || [], layout, PLOT_CONFIG);
  div.dataset.plotted = "1";
}
