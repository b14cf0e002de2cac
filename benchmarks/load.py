"""Load test of a team deployment (issue 13): N concurrent Chromium sessions on one dashboard while a
CLI ingest and an index build run. Bounded (--duration) and loopback only (127.0.0.1).

Setup (skipped with --store DIR when DIR/ready.json says it holds the same data): synthetic
clustered own vectors with labels / predictions (benchmarks/scale.py's generator), stored by the
real CLI (`python -m core ingest --embeddings ... --no-index`) as project "load", space "own",
dataset "ds", unindexed; the UMAP map persisted (core.pipeline.maps.get_map) and opened once in
Chromium, so the sessions open a computed map.

Run: `python -m ui.serve` (wrapped, see --child serve) on a free port with EMBEDSCOPE_DATA_DIR there;
the sessions start once the map was opened once and the server's UMAP warm-up has ended (a one-off
cost of a server start, not of many users); one browser, N contexts (asyncio Playwright, Debian Chromium, never `playwright install`), each
looping over: explore (open the map), recolour, filter (a label), lasso, export (the selection's
CSV download), open (an item's detail), search (Search like these -> results). Meanwhile, in
separate processes: CLI ingests of --extra more own vectors into dataset more<k> of the project
(space own_more by default, back to back until the end), and one index build of the 100k space
(EdgeStore.build_index: a child optimizes a copy, then it is swapped in).

Reported: per action count, p50 / p95 / max seconds; errors (exceptions, timeouts, Streamlit
exception boxes, "busy" / StoreLockedError text in the page, page errors); store waits (the
core.store.waits metric of the dashboard, ingest and index processes: each dumps it to a JSON file);
the ingests' and index build's durations; the 1-minute load average (mean, max).

    nice -n 10 .venv/bin/python benchmarks/load.py --sessions 4 --duration 30 --points 20000   # quick
    .venv/bin/python benchmarks/load.py --store /tmp/load100k                                  # full
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import scale  # noqa: E402  (benchmarks/scale.py: generator, server start, Chromium args)

PROJECT, SPACE, DATASET = "load", "own", "ds"
ACTIONS = ("explore", "recolour", "filter", "lasso", "export", "open", "search")
CHART = '[data-testid="stPlotlyChart"]'
MAP = f"{CHART} canvas, {CHART} .main-svg image"
BUSY = re.compile(r"is busy|StoreLockedError|store busy", re.I)
DATA_VERSION = 1


# -- children: the wrapped dashboard, the ingests, the index build ---------------------------------
def _dump_waits(path: Path, every_s: float | None) -> None:
    """Write core.store.waits.snapshot() to path now (every_s None) or every every_s seconds."""
    from core.store import waits

    def write() -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(waits.snapshot()))
        os.replace(tmp, path)

    if every_s is None:
        write()
        return

    def loop() -> None:
        while True:
            write()
            time.sleep(every_s)

    threading.Thread(target=loop, daemon=True, name="load-waits").start()


def child(kind: str, waits_file: Path, rest: list[str]) -> int:
    if kind == "serve":  # the dashboard, dumping its store waits every second
        _dump_waits(waits_file, 1.0)
        from ui.serve import main as serve

        serve(rest)
        return 0
    if kind == "ingest":
        from core.__main__ import main as cli

        _dump_waits(waits_file, 1.0)
        try:
            return cli(rest)
        finally:
            _dump_waits(waits_file, None)
    if kind == "index":  # rest: store folder
        from core.store import EdgeStore

        _dump_waits(waits_file, 1.0)
        store = EdgeStore(rest[0])
        started = time.perf_counter()
        try:
            swapped = store.build_index(PROJECT, SPACE)
            print(json.dumps({"wall_s": round(time.perf_counter() - started, 1), "swapped": swapped,
                              "indexed": store.index_status(PROJECT, SPACE)}), flush=True)
        finally:
            store.close()
            _dump_waits(waits_file, None)
        return 0
    raise SystemExit(f"unknown child {kind!r}")


def _child_cmd(kind: str, waits_file: Path, rest: list[str]) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--waits-file", str(waits_file),
            "--", *rest]


# -- setup -------------------------------------------------------------------------------------
def _ingest_args(gen: Path, store: Path, space: str, dataset: str, index: bool) -> list[str]:
    return ["ingest", "--manifest", str(gen / "labels.csv"), "--embeddings", str(gen / "vecs.npy"),
            "--ids", str(gen / "ids.txt"), "--space", space, "--project", PROJECT, "--dataset", dataset,
            "--store", str(store), "--progress", "lines", *([] if index else ["--no-index"])]


def setup(work: Path, args: argparse.Namespace, env: dict[str, str]) -> None:
    """Generate and store the project, persist its map (see the module docstring)."""
    stamp = {"points": args.points, "dim": args.dim, "extra": args.extra, "version": DATA_VERSION}
    ready = work / "ready.json"
    if ready.exists() and json.loads(ready.read_text()) == stamp:
        print(f"reusing the project in {work}", file=sys.stderr)
        return
    scale.generate(work / "gen", args.points, args.dim, seed=0)
    scale.generate(work / "extra", args.extra, args.dim, seed=1)
    subprocess.run(["rm", "-rf", str(work / "data")], check=True)
    store = work / "data" / "qdrant"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "core", *_ingest_args(work / "gen", store, SPACE, DATASET, False)],
                   env=env, cwd=work, check=True)
    print(f"stored {args.points} points in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    fit = ("from core.config import load_settings; from core.store import open_store; "
           "from core.auth import local_actor; from core.pipeline.maps import get_map; s = load_settings(); "
           f"st = open_store(s); get_map(st, {PROJECT!r}, {SPACE!r}, [{DATASET!r}], actor=local_actor(s)); "
           "st.close()")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", fit], env=env, cwd=ROOT, check=True)
    print(f"map fitted in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    ready.write_text(json.dumps(stamp))


# -- the browser sessions ------------------------------------------------------------------------
class Stats:
    """Durations per action, errors per kind (with a few examples), page errors."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.examples: list[str] = []
        self.page_errors = 0
        self.busy = 0

    def error(self, kind: str, action: str, text: str) -> None:
        self.errors[kind] += 1
        if len(self.examples) < 12:
            self.examples.append(f"{action}: {kind}: {text[:200]}")


async def _idle(page: Any) -> None:
    await page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for()
    await page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached")


async def _check_page(page: Any, stats: Stats, action: str) -> None:
    """Exception boxes and "store busy" text in the page count as errors."""
    text = await page.locator('[data-testid="stException"], [data-testid="stAlert"]').all_inner_texts()
    for box in text:
        if BUSY.search(box):
            stats.busy += 1
            stats.error("store busy", action, box)
    if await page.locator('[data-testid="stException"]').count():
        stats.error("exception box", action, text[0] if text else "")
        raise RuntimeError("exception shown")


async def _button(page: Any, text: str) -> Any:
    return page.locator('[data-testid="stButton"] button').filter(has_text=text).first


async def _lasso(page: Any) -> None:
    chart = page.locator(CHART).first
    await chart.hover()
    await chart.locator('.modebar-btn[data-title="Lasso Select"]').first.click()
    area = await chart.locator(".nsewdrag").first.bounding_box()
    assert area is not None, "no drag layer on the map"
    cx, cy = area["x"] + area["width"] / 2, area["y"] + area["height"] / 2
    rx, ry = area["width"] / 4, area["height"] / 4
    await page.mouse.move(cx + rx, cy)
    await page.mouse.down()
    for angle in np.linspace(0, 2 * np.pi, 24)[1:]:
        await page.mouse.move(cx + rx * np.cos(angle), cy + ry * np.sin(angle))
    await page.mouse.up()


async def _one_loop(page: Any, url: str, rng: np.random.Generator, stats: Stats, end: float) -> None:
    """One pass over ACTIONS, each timed from its interaction to the rerun's end (and its element)."""
    label = f"c{int(rng.integers(3, scale.N_LABELS)):02d}"  # not the rare classes: the lasso finds points

    async def explore() -> None:
        await page.goto(f"{url}/Explore?project={PROJECT}&space={SPACE}&datasets={DATASET}")
        await page.locator(MAP).first.wait_for()
        await _idle(page)

    async def recolour() -> None:
        await page.locator('[data-testid="stSelectbox"]').filter(has_text="Colour by").locator("input").click()
        await page.get_by_role("option", name="prediction", exact=True).click()
        await _idle(page)
        await page.locator(MAP).first.wait_for()

    async def filter_() -> None:
        box = page.locator('[data-testid="stSidebar"] [data-testid="stMultiSelect"]').filter(
            has_text=re.compile(r"^Label")).locator("input")
        await box.click()
        await box.press_sequentially(label)  # the option list is virtualised: type, then pick the match
        await page.get_by_role("option", name=label, exact=True).click()
        await page.keyboard.press("Escape")
        await _idle(page)
        await page.locator(MAP).first.wait_for()

    async def lasso() -> None:
        await _lasso(page)
        await page.get_by_role("heading", name=re.compile(r"Selection · [0-9]")).first.wait_for()
        await _idle(page)

    async def export() -> None:
        try:
            async with page.expect_download() as download:
                await page.locator('[data-testid="stDownloadButton"] button').filter(has_text="CSV").first.click()
        except Exception:  # no download: say what the button said (it shows an error for 5 s), if anything
            said = await page.locator('[data-testid="stDownloadButtonError"]').all_inner_texts()
            if said:
                raise RuntimeError(f"download failed: {said[0]}") from None
            raise
        failure = await (await download.value).failure()  # waits until the whole file arrived
        if failure:
            raise RuntimeError(f"download failed: {failure}")

    async def open_() -> None:
        await (await _button(page, "Open")).click()
        await page.get_by_text("Nearest neighbours").first.wait_for()
        await _idle(page)

    async def search() -> None:
        await (await _button(page, "Search like these")).click()
        await page.get_by_role("heading", name=re.compile(r"[0-9,]+ results")).first.wait_for()
        await _idle(page)

    for name, act in zip(ACTIONS, (explore, recolour, filter_, lasso, export, open_, search), strict=True):
        if time.monotonic() >= end:
            return
        started = time.perf_counter()
        try:
            await act()
        except Exception as e:
            kind = "timeout" if "Timeout" in type(e).__name__ else type(e).__name__
            stats.error(kind, name, str(e).splitlines()[0] if str(e) else "")
            await _check_page(page, stats, name)
            return  # start the next pass with a fresh page
        stats.times[name].append(time.perf_counter() - started)
        await _check_page(page, stats, name)


async def session(browser: Any, url: str, end: float, stats: Stats, seed: int, timeout_ms: float) -> None:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    context.set_default_timeout(timeout_ms)
    page = await context.new_page()
    page.on("pageerror", lambda error: setattr(stats, "page_errors", stats.page_errors + 1))
    rng = np.random.default_rng(seed)
    await asyncio.sleep(seed * 0.5)  # staggered starts, as users arrive
    try:
        while time.monotonic() < end:
            try:
                await _one_loop(page, url, rng, stats, end)
            except Exception as e:  # noqa: BLE001 - counted by _check_page; go on with a fresh page
                print(f"session {seed}: {type(e).__name__}", file=sys.stderr)
    finally:
        await context.close()


async def drive(url: str, args: argparse.Namespace, stats: Stats) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=scale.CHROMIUM, args=scale.CHROMIUM_ARGS)
        try:
            end = time.monotonic() + args.duration
            runs = asyncio.gather(*(session(browser, url, end, stats, i, args.action_timeout * 1000)
                                    for i in range(args.sessions)))
            try:  # bounded: an action started before the end has action_timeout to finish
                await asyncio.wait_for(runs, args.duration + args.action_timeout + 60)
            except TimeoutError:
                stats.error("timeout", "session", "still running after duration + action timeout")
        finally:
            await browser.close()


async def warm(url: str, timeout_s: float) -> float:
    """Open the map once (the first view builds the server's map data); seconds it took."""
    from playwright.async_api import async_playwright

    started = time.perf_counter()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=scale.CHROMIUM, args=scale.CHROMIUM_ARGS)
        page = await (await browser.new_context(viewport={"width": 1400, "height": 1000})).new_page()
        page.set_default_timeout(timeout_s * 1000)
        await page.goto(f"{url}/Explore?project={PROJECT}&space={SPACE}&datasets={DATASET}")
        while True:  # the quick layout shows until the fitted map is there (fitted in the background)
            await page.locator(MAP).first.wait_for()
            await _idle(page)
            if not await page.get_by_text("Quick layout").count():
                break
            if time.perf_counter() - started > timeout_s:
                raise TimeoutError("the fitted map did not show")
            await asyncio.sleep(2)
        await browser.close()
    return time.perf_counter() - started


# -- background work and the report --------------------------------------------------------------
class Background:
    """CLI ingests back to back (dataset more<k>) and one index build, each in its own process."""

    def __init__(self, work: Path, args: argparse.Namespace, env: dict[str, str]) -> None:
        self.work, self.args, self.env = work, args, env
        self.ingests: list[dict[str, Any]] = []
        self.index: dict[str, Any] = {}
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._ingests, daemon=True),
                        threading.Thread(target=self._index, daemon=True)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def _run(self, kind: str, name: str, rest: list[str]) -> tuple[float, int | None, str, str]:
        """Run a child until it ends or the load ends (then it is stopped: exit None); (seconds, exit,
        stdout, stderr). Its store waits are in work/waits-<name>.json (dumped every second)."""
        started = time.perf_counter()
        out, err = self.work / f"{name}.out", self.work / f"{name}.err"
        with open(out, "wb") as stdout, open(err, "wb") as stderr:
            proc = subprocess.Popen(_child_cmd(kind, self.work / f"waits-{name}.json", rest), env=self.env,
                                    cwd=self.work, stdout=stdout, stderr=stderr, start_new_session=True)
            while proc.poll() is None and not self.stop.wait(0.5):
                pass
            code = proc.poll()
            if code is None:  # the load is over: stop it and its index-build child
                os.killpg(proc.pid, 15)
                proc.wait(timeout=60)
        return (time.perf_counter() - started, code, out.read_text(errors="replace"),
                err.read_text(errors="replace"))

    def _ingests(self) -> None:
        k = 0
        while not self.stop.is_set():
            k += 1
            rest = _ingest_args(self.work / "extra", self.work / "data" / "qdrant", self.args.ingest_space,
                                f"more{k}", True)
            wall, code, _, err = self._run("ingest", f"ingest{k}", rest)
            self.ingests.append({"dataset": f"more{k}", "wall_s": round(wall, 1),
                                 "exit": "stopped at the end" if code is None else code,
                                 "busy": len(BUSY.findall(err)), "tail": err.strip().splitlines()[-1:] if code else []})

    def _index(self) -> None:
        wall, code, out, err = self._run("index", "index", [str(self.work / "data" / "qdrant")])
        lines = out.strip().splitlines()
        self.index = {"wall_s": round(wall, 1), "exit": "stopped at the end" if code is None else code,
                      "busy": len(BUSY.findall(err)),
                      **(json.loads(lines[-1]) if code == 0 and lines else {"error": err.strip()[-300:]})}


def _waits(files: list[Path]) -> dict[str, dict[str, Any]]:
    """Store waits summed over the processes' dumps: {kind: {count, total_s, max_s, over_1s}}, and the
    five longest holds of the store {"longest_holds": {"holds": [[s, operation], ...]}}."""
    out: dict[str, dict[str, Any]] = {}
    for path in files:
        if not path.exists():
            continue
        for kind, s in json.loads(path.read_text()).items():
            if kind == "longest_holds":
                holds = out.setdefault("longest_holds", {"holds": []})
                holds["holds"] = sorted(holds["holds"] + s, reverse=True)[:5]
                continue
            agg = out.setdefault(kind, {"count": 0, "total_s": 0.0, "max_s": 0.0, "over_1s": 0})
            agg["count"] += s["count"]
            agg["total_s"] = round(agg["total_s"] + s["total_s"], 2)
            agg["max_s"] = max(agg["max_s"], s["max_s"])
            agg["over_1s"] += sum(n for label, n in s["histogram"].items() if label in ("<=5", "<=30", ">30"))
    return out


def report(stats: Stats, bg: Background, loads: list[float], work: Path, args: argparse.Namespace) -> None:
    print(f"\nload test: {args.sessions} sessions x {args.duration:g} s on {args.points:,} points "
          f"({args.dim}-d), ingest space {args.ingest_space!r}")
    print(f"{'action':<10} {'n':>5} {'p50 s':>7} {'p95 s':>7} {'max s':>7}")
    for name in ACTIONS:
        t = np.array(stats.times.get(name, []))
        if len(t):
            print(f"{name:<10} {len(t):>5} {np.percentile(t, 50):>7.2f} {np.percentile(t, 95):>7.2f} {t.max():>7.2f}")
        else:
            print(f"{name:<10} {0:>5} {'-':>7} {'-':>7} {'-':>7}")
    print(f"errors: {sum(stats.errors.values())} {dict(stats.errors)}; 'store busy' in pages: {stats.busy}; "
          f"page (JS) errors: {stats.page_errors}")
    for example in stats.examples:
        print(f"  {example}")
    for name, files in (("dashboard", [work / "waits-server.json"]),
                        ("ingests", sorted(work.glob("waits-ingest*.json"))), ("index", [work / "waits-index.json"])):
        print(f"store waits ({name}): {_waits(files)}")
    print(f"ingests: {bg.ingests}")
    print(f"index build: {bg.index or 'still running at the end'}")
    server_busy = len(BUSY.findall((work / "streamlit.log").read_text(errors="replace")))
    print(f"'busy' in the dashboard's log: {server_busy}")
    print(f"load average (1 min) during the run: mean {np.mean(loads):.1f}, max {np.max(loads):.1f} "
          f"on {os.cpu_count()} CPUs")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sessions", type=int, default=20)
    p.add_argument("--duration", type=float, default=120.0, help="seconds of browser load")
    p.add_argument("--points", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--extra", type=int, default=None, help="points per parallel ingest (default: points / 2)")
    p.add_argument("--ingest-space", default="own_more", help="space of the parallel ingests (own: the map's)")
    p.add_argument("--store", type=Path, help="work folder to build or reuse (default: a new temp folder)")
    p.add_argument("--action-timeout", type=float, default=60.0, help="seconds before an action is an error")
    p.add_argument("--no-background", action="store_true", help="no ingest / index build (the baseline)")
    p.add_argument("--setup-only", action="store_true", help="build the project (--store DIR) and stop")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--waits-file", type=Path, help=argparse.SUPPRESS)
    p.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        raise SystemExit(child(args.child, args.waits_file, args.rest))
    args.extra = args.extra or args.points // 2
    import tempfile

    work = (args.store or Path(tempfile.mkdtemp(prefix="embedscope-load-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    env = scale.child_env(work)
    setup(work, args, env)
    if args.setup_only:
        return
    for old in work.glob("waits-*.json"):
        old.unlink()
    port = scale._free_port()
    cmd = _child_cmd("serve", work / "waits-server.json",
                     ["--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
                      "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
                      "--global.developmentMode", "false"])
    with open(work / "streamlit.log", "wb") as log:
        server = subprocess.Popen(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, server)
        print(f"first view of the map: {asyncio.run(warm(url, 900)):.0f} s", file=sys.stderr)
        print(f"UMAP warm-up: {_wait_warm_up(work / 'streamlit.log', 600)}", file=sys.stderr)
        stats, bg, loads = Stats(), Background(work, args, env), []
        if not args.no_background:
            bg.start()
        sampler = threading.Thread(target=_sample_load, args=(loads, bg.stop), daemon=True)
        sampler.start()
        cpu_before = (_cpu_s(server.pid), _machine_cpu_s())
        asyncio.run(drive(url, args, stats))
        cpu = (_cpu_s(server.pid) - cpu_before[0], _machine_cpu_s() - cpu_before[1])
        bg.stop.set()  # the running ingest / build are stopped; their waits so far are in their dumps
        for thread in bg.threads if not args.no_background else ():
            thread.join(timeout=120)
        report(stats, bg, loads, work, args)
        print(f"CPU seconds during the sessions: dashboard process {cpu[0]:.0f} of {cpu[1]:.0f} on the machine "
              "(the rest: the Chromium pages, the ingest and index processes, anything else running)")
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"work folder: {work}")


def _wait_healthy(url: str, server: subprocess.Popen[bytes]) -> None:
    import urllib.request

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)  # polling a socket for readiness
    raise RuntimeError(f"dashboard not healthy (exit {server.poll()})")


def _wait_warm_up(log_file: Path, timeout_s: float) -> str:
    """Wait until the dashboard's UMAP warm-up (core.warmup, started with the server) has ended: it
    holds a core and the server's GIL for a minute or more on a loaded machine, a one-off cost of a
    server start, not of serving many users (what this test measures). Returns what the log said."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = re.search(r"UMAP warm-up (done in [0-9.]+ s|failed)", log_file.read_text(errors="replace"))
        if found:
            return found.group(1)
        time.sleep(1.0)  # polling the server's log file
    return f"still running after {timeout_s:.0f} s"


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a live process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_cpu_s() -> float:
    """CPU seconds the whole machine has spent busy (not idle or waiting for I/O) since boot."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def _sample_load(loads: list[float], stop: threading.Event) -> None:
    while True:
        loads.append(os.getloadavg()[0])
        if stop.wait(5.0):
            return


if __name__ == "__main__":
    main()
