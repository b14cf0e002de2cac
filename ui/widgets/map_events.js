// Map events for a plotly chart (see map_events.py): lasso polygon / box, click, viewport.
// CCv2 runs this module in the app document, so it reaches the chart's plotly div. Only a few
// numbers go to the server; the server computes the selected ids. State lives on window per key.

const REGISTRY = (window.__embedscopeMapEvents = window.__embedscopeMapEvents || {});
// The user's tool (zoom, pan, lasso...) per chart: a page rerun may remount this component.
const DRAGMODES = (window.__embedscopeDragmodes = window.__embedscopeDragmodes || {});
// The instance now mounted per chart: a zoom debounced in one that a rerun unmounted is sent by this one.
const LIVE = (window.__embedscopeMapLive = window.__embedscopeMapLive || {});
const DOUBLE_CLICK_MS = 350;  // a click is sent once no second one follows (a double-click resets the zoom)
const MAX_VERTICES = 600;
const SVG = {
  select: "M2 2h12v12H2z",
  lasso: "M8 2C4 2 1.5 4 1.5 6.5S4 11 8 11s6.5-2 6.5-4.5S12 2 8 2zM5 11.5c-1 1.5 0 3 2 2.5",
};

function thin(xs, ys) {
  // A lasso has one vertex per mouse move: keep its shape, bound what is sent.
  if (xs.length <= MAX_VERTICES) return { x: xs.map(Number), y: ys.map(Number) };
  const step = xs.length / MAX_VERTICES, x = [], y = [];
  for (let i = 0; i < MAX_VERTICES; i++) { const j = Math.floor(i * step); x.push(+xs[j]); y.push(+ys[j]); }
  return { x, y };
}

function send(s, name, payload) {
  s.seq = window.__embedscopeMapSeq = (window.__embedscopeMapSeq || 0) + 1;  // unique across remounts
  s.setTrigger(name, { ...payload, rev: s.rev, seq: s.seq });
}

function onSelected(s, ev) {
  if (!ev) return;  // plotly fires it with nothing after a click in select mode
  if (ev.lassoPoints && ev.lassoPoints.x) {
    s.selectedAt = performance.now();
    send(s, "select", { lasso: thin(ev.lassoPoints.x, ev.lassoPoints.y) });
  } else if (ev.range && ev.range.x) {
    s.selectedAt = performance.now();
    send(s, "select", { box: { x: ev.range.x.map(Number), y: ev.range.y.map(Number) } });
  }
}

function onRelayout(s, ev) {
  if (!ev) return;
  if (typeof ev.dragmode === "string") DRAGMODES[s.chart] = ev.dragmode;  // kept across redraws
  if (!s.watchView) return;
  const keys = Object.keys(ev);
  if (!keys.some((k) => k.startsWith("xaxis.") || k.startsWith("yaxis."))) return;  // dragmode...
  clearTimeout(s.viewTimer);
  s.viewTimer = setTimeout(() => {
    s = LIVE[s.chart] || s;
    const full = s.gd && s.gd._fullLayout;
    if (!full) return;
    const auto = ev["xaxis.autorange"] === true && ev["yaxis.autorange"] === true;
    const xr = full.xaxis.range, yr = full.yaxis.range, size = full._size || {};
    const view = auto ? null : [xr[0], xr[1], yr[0], yr[1]].map((v) => Math.round(+v));
    // Only a change the server has not drawn yet: a redraw must never echo into another rerun.
    if (JSON.stringify(view) === JSON.stringify(s.serverView)) return;
    s.serverView = view;
    send(s, "view", auto ? { auto: true } : { x: view.slice(0, 2), y: view.slice(2), w: size.w, h: size.h });
  }, s.debounce);
}

function setDragmode(s, val) {
  // Plotly's own modebar path (uirevision-aware): its Pan button's handler reads data-val.
  const pan = s.gd && s.gd.querySelector('.modebar-btn[data-attr="dragmode"][data-val="pan"]');
  if (!pan) return;
  pan.setAttribute("data-val", val);
  try { pan.dispatchEvent(new MouseEvent("click", { bubbles: true })); } finally { pan.setAttribute("data-val", "pan"); }
}

function resetZoom(s) {
  // Back to the whole map. The server draws a zoomed figure with its view as explicit axis ranges, so
  // plotly's own "reset" would return to that view: the Reset axes button is made an autorange one.
  const reset = s.gd && s.gd.querySelector('.modebar-btn[data-attr="zoom"][data-val="auto"]');
  if (reset) reset.dispatchEvent(new MouseEvent("click", { bubbles: true }));
}

function restoreDragmode(s) {
  // Every new figure from the server comes with the default tool (lasso): give the user's back.
  const full = s.gd && s.gd._fullLayout, wanted = DRAGMODES[s.chart];
  if (wanted && full && full.dragmode !== wanted) setDragmode(s, wanted);
}

function button(s, title, val, path) {
  const a = document.createElement("a");
  a.className = "modebar-btn embedscope-select";
  a.setAttribute("rel", "tooltip");
  a.setAttribute("data-title", title);
  a.setAttribute("data-embedscope-val", val);
  a.innerHTML = `<svg viewBox="0 0 16 16" class="icon" height="1em" width="1em"><path d="${path}" fill="none" stroke="currentColor" stroke-width="1.4" stroke-dasharray="2 1.5"/></svg>`;
  a.addEventListener("click", (e) => { e.preventDefault(); setDragmode(s, val); });
  return a;
}

function addButtons(s) {
  // Streamlit removes Box / Lasso Select when its own selection is off; put ours back.
  const reset = s.gd.querySelector('.modebar-btn[data-attr="zoom"][data-val="reset"]');
  if (reset) reset.setAttribute("data-val", "auto");
  const pan = s.gd.querySelector('.modebar-btn[data-attr="dragmode"][data-val="pan"]');
  if (!pan || s.gd.querySelector(".embedscope-select")) return;
  const group = document.createElement("div");
  group.className = "modebar-group";
  group.append(button(s, "Box Select", "select", SVG.select), button(s, "Lasso Select", "lasso", SVG.lasso));
  pan.parentNode.after(group);
}

function attach(s) {
  const host = document.querySelector(`.${CSS.escape(s.chart)} .js-plotly-plot`);
  if (!host || !host.on) return;
  const attached = host._ev && host._ev.listeners("plotly_selected").includes(s.selectedFn);
  if (host !== s.gd || !attached) {
    detach(s);
    s.gd = host;
    host.on("plotly_selected", s.selectedFn);
    host.on("plotly_deselect", s.deselectFn);
    host.on("plotly_click", s.clickFn);
    host.on("plotly_relayout", s.relayoutFn);
    host.on("plotly_doubleclick", s.resetFn);
    host.on("plotly_afterplot", s.afterplotFn);
  }
  addButtons(s);
  restoreDragmode(s);
}

function detach(s) {
  if (!s.gd || !s.gd.removeListener) return;
  s.gd.removeListener("plotly_selected", s.selectedFn);
  s.gd.removeListener("plotly_deselect", s.deselectFn);
  s.gd.removeListener("plotly_click", s.clickFn);
  s.gd.removeListener("plotly_relayout", s.relayoutFn);
  s.gd.removeListener("plotly_doubleclick", s.resetFn);
  s.gd.removeListener("plotly_afterplot", s.afterplotFn);
}

function create(key) {
  const s = { seq: 0, gd: null, viewTimer: 0 };
  s.selectedFn = (ev) => onSelected(s, ev);
  s.deselectFn = () => {  // a double-click in select / lasso mode: clear the selection and the zoom
    clearTimeout(s.clickTimer);
    const zoomed = s.serverView !== null;
    s.serverView = null;  // one rerun for both: the autorange below then sends nothing more
    send(s, "select", zoomed ? { clear: true, view: { auto: true } } : { clear: true });
    resetZoom(s);
  };
  s.resetFn = () => resetZoom(s);  // a double-click in zoom / pan mode
  s.afterplotFn = () => setTimeout(() => { addButtons(s); restoreDragmode(s); }, 0);  // not inside a draw
  s.clickFn = (ev) => {
    const p = ev && ev.points && ev.points[0], now = performance.now();
    clearTimeout(s.clickTimer);
    if (now - (s.clickAt || -1e9) < DOUBLE_CLICK_MS) { s.clickAt = 0; return; }  // the second of a double
    s.clickAt = now;
    if (!p) return;
    const click = { curve: p.curveNumber, index: p.pointIndex ?? p.pointNumber }, rev = s.rev;
    // Sent by the instance mounted then (a rerun meanwhile, e.g. a hover's, may have remounted this
    // one), and only for the figure clicked: its (trace, index) mean nothing in another one.
    s.clickTimer = setTimeout(() => {
      const live = LIVE[s.chart] || s;
      if (live.rev === rev) send(live, "click", click);
    }, DOUBLE_CLICK_MS);
  };
  s.relayoutFn = (ev) => onRelayout(s, ev);
  s.poll = setInterval(() => attach(s), 300);
  REGISTRY[key] = s;
  return s;
}

export default function ({ parentElement, data, setTriggerValue, key }) {
  const s = REGISTRY[key] || create(key);
  s.setTrigger = setTriggerValue;
  s.chart = data.chart;
  s.rev = data.rev;
  s.watchView = !!data.watch_view;
  s.serverView = data.view || null;
  s.debounce = data.debounce || 250;
  LIVE[s.chart] = s;
  const host = parentElement.host || parentElement;
  const box = host.closest && host.closest('[data-testid="stElementContainer"]');
  if (box) box.style.display = "none";  // nothing to draw: take no room
  attach(s);
  return () => {
    clearInterval(s.poll);  // a pending zoom or click is still sent, by the chart's live instance
    detach(s);
    delete REGISTRY[key];
    if (LIVE[s.chart] === s) delete LIVE[s.chart];
  };
}
