"""A layer sweep: one `ingest --layers` (one forward pass) vs one `ingest --layer` per layer, then `evaluate`.

Writes N real sklearn digits (8x8 grey, sub-folders = labels) as PNGs, then times, each in a fresh
CLI process and a fresh store (model load included, as a user runs it):
  * `embedscope ingest FOLDER --model M --layers A,B,pooled`  (one pass, three spaces);
  * `embedscope ingest FOLDER --model M --layer X` for each layer (three passes);
and prints the load average around each run, the speed-up, and `embedscope evaluate` of the sweep.

    python benchmarks/layer_sweep.py --n 1000 --model efficientnet-lite0 --layers hidden:6,hidden:11,pooled
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
PROJECT, DATASET = "sweep", "digits"


def write_digits(folder: Path, n: int) -> None:
    """The first n sklearn digits as 8x8 grey PNGs under folder/<digit>/."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    for i, (pixels, label) in enumerate(zip(digits.images[:n], digits.target[:n], strict=True)):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray((pixels * 255 / 16).astype(np.uint8)).save(folder / str(label) / f"{i:04d}.png")


def cli(data_dir: Path, *argv: str) -> tuple[float, str]:
    """(wall seconds, stdout) of `python -m core ARGV` with its own store under data_dir."""
    env = {**os.environ, "EMBEDSCOPE_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "core", *argv], env=env, capture_output=True, text=True,
                          check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"`{' '.join(argv)}` failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return wall, done.stdout


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="digits to ingest (at most 1797)")
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--layers", default="hidden:6,hidden:11,pooled")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_digits(root / "digits", args.n)
        base = ["ingest", str(root / "digits"), "--project", PROJECT, "--dataset", DATASET, "--model", args.model,
                "--device", args.device, "--progress", "none", "--no-index"]
        print(f"{args.n} sklearn digits, model {args.model}, layers {args.layers}, device {args.device}")
        print(f"before: {load()}")
        one, out = cli(root / "one-pass", *base, "--layers", args.layers)
        print(f"--layers {args.layers}: {one:.1f} s ({load()})\n{out.rstrip()}")
        apart = 0.0
        for layer in args.layers.split(","):
            wall, out = cli(root / "per-layer", *base, "--layer", layer.strip())
            apart += wall
            print(f"--layer {layer}: {wall:.1f} s ({load()})  {out.strip()}")
        print(f"one pass {one:.1f} s vs one pass per layer {apart:.1f} s: {apart / one:.2f}x")
        wall, out = cli(root / "one-pass", "evaluate", "--project", PROJECT, "--progress", "none")
        print(f"\n$ embedscope evaluate --project {PROJECT}   ({wall:.1f} s)\n{out.rstrip()}")


if __name__ == "__main__":
    main()
