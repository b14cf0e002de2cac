"""`embedscope models`: presets, offline packages and local model folders, and which work offline here."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from core.cli.common import EXIT_OK, with_data_roots
from core.config import Settings


def register(subparsers: Any) -> None:
    """Add the `models` command."""
    p = subparsers.add_parser(
        "models", help="list the models you can embed with, and which work without internet",
        description="List the preset models, the offline model packages (installed or not) and the "
        "local model folders (a save_pretrained folder with a config.json) found under the data "
        "roots, saying which of them work without internet on this install. Pass any of them to "
        "`embedscope ingest --model`.",
    )
    p.add_argument("--data-root", type=Path, action="append", default=[], metavar="DIR",
                   help="also look for model folders under DIR (repeatable)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def _section(title: str, rows: list[dict[str, Any]], empty: str) -> list[str]:
    lines = ["", title]
    if not rows:
        return [*lines, f"  {empty}"]
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        offline = "offline" if r["offline"] else "online "
        modality = f"{r['modality']}, " if r["modality"] else ""
        lines.append(f"  {r['name']:<{width}}  {offline}  {modality}{r['note']}")
    return lines


def format_models(data: dict[str, Any]) -> str:
    """The catalog as text: one section per kind, then the offline summary."""
    by_kind = {kind: [o for o in data["models"] if o["kind"] == kind] for kind in ("preset", "package", "folder")}
    roots = ", ".join(data["roots"]) or "none"
    lines = [f"Hugging Face hub: {data['hub']}"]
    lines += _section("Presets (hub names; `offline` = already on this machine):", by_kind["preset"], "none")
    lines += _section("Offline packages (weights shipped by a pip package):", by_kind["package"], "none")
    lines += _section(f"Local model folders under the data roots ({roots}):", by_kind["folder"],
                      "none found: save one with model.save_pretrained(DIR) under a data root, or pass "
                      "--data-root")
    offline = [o["name"] for o in data["models"] if o["offline"]]
    lines += ["", "Work without internet here: " + (", ".join(dict.fromkeys(offline)) or "none"),
              "Use one with: embedscope ingest ... --model NAME_OR_FOLDER"]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Execute `embedscope models`; returns 0."""
    from core.embedders import catalog

    settings = with_data_roots(settings, *args.data_root)
    roots = settings.allowed_roots
    options = catalog.catalog(roots, settings.allow_pickled_models)
    hub = ("offline (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE set): hub models load only from the cache"
           if catalog.hub_offline_by_setting() else "downloads allowed (needs internet)")
    data = {"hub": hub, "roots": [str(r) for r in roots], "models": [o.to_dict() for o in options]}
    sys.stdout.write(json.dumps(data, indent=2) + "\n" if args.json else format_models(data))
    return EXIT_OK
