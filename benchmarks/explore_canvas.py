"""Time to a drawn WebGL scatter in Chromium for the Explore map, and the bytes it sends.

The figure is the one the Explore page sends (ui.widgets.scatter.build_figure on a map frame
from ui.explore.build_map_frame) for synthetic data shaped like a labeled dataset: 10 classes,
predictions 90 % right, three datasets, confidence, item keys. The spec JSON is produced exactly
as st.plotly_chart does (plotly.io.to_json) and served with the plotly.js bundled in the plotly
package (no CDN) to Debian's Chromium driven by Playwright, with the flags the browser tests use.

Measured per size:
  python: build_figure + to_json on the server side (what one Explore rerun costs to draw)
  bytes:  the spec JSON size (what goes over the websocket) and bytes per point (target <= 12;
          above ui.widgets.scatter.DENSITY_MIN points the figure is a density image + a sample)
  lasso:  server side of a lasso (a 500-vertex polygon around the middle, as the browser sends
          it): point-in-polygon ids over every visible point + the selection rows for the grid
  canvas: navigation start -> figure fetched, parsed and Plotly.newPlot resolved, plus two
          animation frames (the WebGL draw is flushed), median of --repeats fresh page loads.
          Streamlit's own page already holds plotly.js, so the bundle load is reported apart.
Target: canvas at 100k <= 3 s. Run:

    . .venv/bin/activate && nice -n 10 python benchmarks/explore_canvas.py   # 10k and 100k
    nice -n 10 python benchmarks/explore_canvas.py --points 100000 300000 --repeats 3 --screenshot /tmp/canvas.png
"""

from __future__ import annotations

import argparse
import http.server
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ui.explore import build_map_frame, colour_spec, selection_rows  # noqa: E402
from ui.widgets.scatter import build_figure, region_ids  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PAGE = """<!doctype html><html><head><meta charset="utf-8"></head><body style="margin:0">
<div id="map" style="width:1000px;height:640px"></div>
<script src="/plotly.min.js"></script>
<script>
window.bench = (async () => {
  const t0 = performance.now();
  const spec = await (await fetch("/fig.json")).json();
  const t1 = performance.now();
  await Plotly.newPlot("map", spec.data, spec.layout, {displaylogo: false});
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const t2 = performance.now();
  const canvases = document.querySelectorAll("#map canvas").length;
  return {script_ms: t0, fetch_parse_ms: t1 - t0, plot_ms: t2 - t1, total_ms: t2, canvases};
})();
</script></body></html>"""


def synthetic_frame(n: int, seed: int = 0) -> pd.DataFrame:
    """A map frame of n points in 10 blobs, with labels, predictions, datasets and keys."""
    rng = np.random.default_rng(seed)
    labels = np.array([str(i) for i in range(10)], dtype=object)
    lab = rng.integers(0, 10, n)
    pred = np.where(rng.random(n) < 0.9, lab, rng.integers(0, 10, n))
    angle = lab * (2 * np.pi / 10)
    centres = np.column_stack([np.cos(angle), np.sin(angle)]) * 8
    coords = (centres + rng.normal(size=(n, 2))).astype(np.float32)
    ids = [f"{i:08x}-0000-5000-8000-{i:012x}" for i in range(n)]
    payloads = pd.DataFrame({
        "dataset": rng.choice(np.array(["train", "test", "production"], dtype=object), n),
        "key": [f"images/{i:06d}.png" for i in range(n)], "label": labels[lab],
        "prediction": labels[pred], "confidence": rng.random(n).round(3), "split": "train",
        "uri": [f"/data/images/{i:06d}.png" for i in range(n)],
    }, index=pd.Index(ids, name="id"))
    return build_map_frame(ids, coords, payloads)


def figure_json(frame: pd.DataFrame, colour_by: str) -> tuple[bytes, float, float, int]:
    """(spec JSON as st.plotly_chart sends it, seconds to build + serialise it, seconds for the
    server side of a lasso, points the lasso selected)."""
    import plotly.io as pio

    started = time.perf_counter()
    built = build_figure(frame, colour_spec(frame, colour_by), title=f"UMAP · {len(frame):,} points")
    spec = pio.to_json(built.figure, validate=False).encode()
    python_s = time.perf_counter() - started
    angle = np.linspace(0, 2 * np.pi, 500, endpoint=False)
    radius = 26_000 * (1 + 0.2 * np.sin(7 * angle))  # around most of the ring of blobs
    lasso = {"x": (32_768 + radius * np.cos(angle)).tolist(), "y": (32_768 + radius * np.sin(angle)).tolist()}
    started = time.perf_counter()
    ids = region_ids(built, frame.index, {"lasso": lasso})
    selection_rows(frame, ids)
    return spec, python_s, time.perf_counter() - started, len(ids)


class _Files:
    """What the little HTTP server serves (swapped per size)."""

    spec: bytes = b"{}"
    bundle: bytes = b""


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        body, kind = {"/": (PAGE.encode(), "text/html"), "/fig.json": (_Files.spec, "application/json"),
                      "/plotly.min.js": (_Files.bundle, "text/javascript")}.get(
            self.path, (b"", "text/plain"))
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=3600")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def measure(url: str, repeats: int, screenshot: str | None) -> list[dict[str, float]]:
    from playwright.sync_api import sync_playwright

    results = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1040, "height": 700})
        for i in range(repeats + 1):  # the first load warms the bundle cache; not counted
            page = context.new_page()
            page.goto(url)
            result = page.evaluate("window.bench")
            if i > 0:
                results.append(result)
            if screenshot and i == repeats:
                page.screenshot(path=screenshot)
            page.close()
        browser.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--colour", default="agreement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--screenshot", default=None, help="PNG of the last 100k draw")
    args = parser.parse_args()
    import plotly

    _Files.bundle = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_bytes()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    print(f"plotly.js bundle: {len(_Files.bundle) / 1e6:.1f} MB (already loaded in Streamlit's "
          f"frontend; the first, uncounted load of each size pays it)")
    print(f"{'points':>8} {'spec MB':>8} {'B/point':>8} {'python s':>9} {'lasso ms':>9} {'fetch+parse ms':>15} "
          f"{'newPlot ms':>11} {'canvas ms':>10} (median of {args.repeats})")
    for n in args.points:
        frame = synthetic_frame(n)
        _Files.spec, python_s, lasso_s, selected = figure_json(frame, args.colour)
        del frame
        runs = measure(url, args.repeats, args.screenshot if n == args.points[-1] else None)
        canvas = statistics.median(r["fetch_parse_ms"] + r["plot_ms"] for r in runs)
        print(f"{n:>8,} {len(_Files.spec) / 1e6:>8.2f} {len(_Files.spec) / n:>8.2f} {python_s:>9.2f} "
              f"{lasso_s * 1000:>9.0f} {statistics.median(r['fetch_parse_ms'] for r in runs):>15.0f} "
              f"{statistics.median(r['plot_ms'] for r in runs):>11.0f} {canvas:>10.0f}"
              f"   canvases={runs[0]['canvases']} lasso selected {selected:,}")
    server.shutdown()


if __name__ == "__main__":
    main()
