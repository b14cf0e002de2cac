// Hover thumbnails for a plotly chart (see hover_preview.py). CCv2 runs this module in the app
// document (no iframe), so it can reach the chart's plotly div and listen to its hover events.
// State lives on window per component key: Streamlit may call the export on every data update.

const REGISTRY = (window.__embedscopeHover = window.__embedscopeHover || {});
const CACHE_MAX = 500;

function tooltip() {
  const tip = document.createElement("div");
  tip.setAttribute("data-testid", "embedscope-hover-preview");
  Object.assign(tip.style, {
    position: "fixed", zIndex: "100000", pointerEvents: "none", display: "none",
    background: "white", border: "1px solid #ccc", borderRadius: "6px", padding: "4px",
    boxShadow: "0 2px 8px rgba(0,0,0,0.25)", maxWidth: "180px", font: "12px sans-serif",
    color: "#222",
  });
  const img = document.createElement("img");
  img.alt = "";
  // Upscaled tiny images (8x8 digits) stay crisp; photos are smoothed as usual.
  img.onload = () => { img.style.imageRendering = img.naturalWidth < 64 ? "pixelated" : "auto"; };
  Object.assign(img.style, { display: "block", width: "160px", height: "160px",
                             objectFit: "contain" });
  const caption = document.createElement("div");
  Object.assign(caption.style, { marginTop: "2px", overflow: "hidden", whiteSpace: "normal", overflowWrap: "anywhere",
                                 textOverflow: "ellipsis" });
  tip.append(img, caption);
  document.body.appendChild(tip);
  return { tip, img, caption };
}

function place(s) {
  // Beside the cursor, on the side away from plotly's own hover label (which shows the fields).
  const { tip } = s.ui;
  const w = tip.offsetWidth, h = tip.offsetHeight, gap = 16;
  const label = s.gd && s.gd.querySelector(".hoverlayer .hovertext");
  const labelRight = label ? label.getBoundingClientRect().left >= s.x : true;
  let left = labelRight ? s.x - w - gap : s.x + gap;
  if (left < 0) left = s.x + gap;
  if (left + w > window.innerWidth) left = Math.max(0, s.x - w - gap);
  const top = Math.min(Math.max(0, s.y - h / 2), window.innerHeight - h);
  tip.style.left = `${left}px`;
  tip.style.top = `${top}px`;
}

function show(s, reply) {
  // Only data: image URIs made by the server; the browser never chooses what to load.
  const hasImage = reply && typeof reply.src === "string" && reply.src.startsWith("data:image/");
  if (!reply || (!hasImage && !reply.caption)) {
    hide(s);
    return;
  }
  if (hasImage) s.ui.img.src = reply.src;
  else s.ui.img.removeAttribute("src");
  s.ui.img.style.display = hasImage ? "block" : "none";
  s.ui.caption.textContent = reply.caption || "";  // textContent: user strings never become HTML
  s.ui.caption.style.display = reply.caption ? "block" : "none";
  s.ui.tip.style.display = "block";
  place(s);
}

function hide(s) {
  s.ui.tip.style.display = "none";
}

function cacheKey(rev, curve, index) {
  return `${rev}|${curve}|${index}`;
}

function onHover(s, ev) {
  const p = ev && ev.points && ev.points[0];
  if (!p) return;
  const curve = p.curveNumber, index = p.pointIndex ?? p.pointNumber;
  if (ev.event) { s.x = ev.event.clientX; s.y = ev.event.clientY; }
  s.want = { curve, index };
  s.hoverAt = performance.now();
  clearTimeout(s.timer);
  const k = cacheKey(s.rev, curve, index);
  if (s.cache.has(k)) { show(s, s.cache.get(k)); return; }
  hide(s);
  // Debounced: sweeping the cursor across the map asks only for the point it rests on.
  s.timer = setTimeout(() => {
    s.seq += 1;
    s.sentAt = performance.now();
    s.setTrigger("hover", { rev: s.rev, curve, index, seq: s.seq });
  }, s.debounce);
}

function onUnhover(s) {
  clearTimeout(s.timer);
  s.want = null;
  hide(s);
}

function attach(s) {
  // The chart div is replaced or purged on some reruns: re-find it and re-attach when needed.
  const host = document.querySelector(`.${CSS.escape(s.chart)} .js-plotly-plot`);
  if (!host || !host.on) return;
  const attached = host._ev && host._ev.listeners("plotly_hover").includes(s.hoverFn);
  if (host === s.gd && attached) return;
  if (s.gd && s.gd.removeListener) {
    s.gd.removeListener("plotly_hover", s.hoverFn);
    s.gd.removeListener("plotly_unhover", s.unhoverFn);
    s.gd.removeEventListener("mousemove", s.moveFn);
  }
  s.gd = host;
  host.on("plotly_hover", s.hoverFn);
  host.on("plotly_unhover", s.unhoverFn);
  host.addEventListener("mousemove", s.moveFn);
}

function create(key) {
  const s = { cache: new Map(), want: null, timer: 0, seq: 0, x: 0, y: 0, gd: null };
  s.ui = tooltip();
  s.hoverFn = (ev) => onHover(s, ev);
  s.unhoverFn = () => onUnhover(s);
  s.moveFn = (e) => {
    s.x = e.clientX; s.y = e.clientY;
    if (s.ui.tip.style.display === "block") place(s);
  };
  s.poll = setInterval(() => attach(s), 400);
  REGISTRY[key] = s;
  return s;
}

export default function ({ parentElement, data, setTriggerValue, key }) {
  const s = REGISTRY[key] || create(key);
  s.setTrigger = setTriggerValue;
  s.chart = data.chart;
  s.debounce = data.debounce || 120;
  if (s.rev !== data.rev) { s.rev = data.rev; s.cache.clear(); hide(s); }
  // The component itself has nothing to draw: collapse its element so it takes no room.
  const host = parentElement.host || parentElement;
  const box = host.closest && host.closest('[data-testid="stElementContainer"]');
  if (box) box.style.display = "none";
  const reply = data.reply;
  if (reply && reply.rev === s.rev) {
    const k = cacheKey(reply.rev, reply.curve, reply.index);
    if (s.cache.size >= CACHE_MAX) s.cache.delete(s.cache.keys().next().value);
    s.cache.set(k, reply);
    if (s.want && s.want.curve === reply.curve && s.want.index === reply.index) {
      // Latencies for tests and tuning: server round trip, and hover event to thumbnail shown.
      const now = performance.now();
      s.ui.tip.dataset.roundTripMs = String(Math.round(now - (s.sentAt || now)));
      s.ui.tip.dataset.hoverToShowMs = String(Math.round(now - (s.hoverAt || now)));
      show(s, reply);
    }
  }
  attach(s);
  return () => {
    // Unmounted (page left or the map gone): drop listeners, timer and the floating element.
    clearInterval(s.poll);
    clearTimeout(s.timer);
    if (s.gd && s.gd.removeListener) {
      s.gd.removeListener("plotly_hover", s.hoverFn);
      s.gd.removeListener("plotly_unhover", s.unhoverFn);
      s.gd.removeEventListener("mousemove", s.moveFn);
    }
    s.ui.tip.remove();
    delete REGISTRY[key];
  };
}
