"""`embedscope demo`: load the offline demo project (digits with planted drift) into the store."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from core.auth import Permission, local_actor, require
from core.cli.common import EXIT_BY_STATUS, PROGRESS_MODES, opened_store, progress_display
from core.config import Settings


def register(subparsers: Any) -> None:
    """Add the `demo` command."""
    p = subparsers.add_parser(
        "demo", help="load the offline demo project (handwritten digits, no download needed)",
        description="Create the project 'demo': scikit-learn's 1,797 handwritten digits as PNG files, "
        "in datasets train / test / production (every 9 is held out of training and appears only in "
        "production: planted drift), with a small classifier's predictions and its penultimate-layer "
        "embeddings (space demo-mlp), raw pixels (space pixels) and, where the offline weights are "
        "installed, EfficientNet-Lite0 image embeddings. Running it again refreshes it without duplicates.",
    )
    p.add_argument("--no-pretrained", action="store_true",
                   help="skip the EfficientNet-Lite0 space (the slow part: minutes on 2 CPU cores; "
                   "default: EMBEDSCOPE_DEMO_PRETRAINED, yes)")
    p.add_argument("--detection", action="store_true",
                   help="load the detection demo instead (project demo-detection): scenes of digits placed on "
                   "real photos, COCO labels with planted errors and simulated predictions, one point per "
                   "image and per box (space pixels; efficientnet-lite0 too where installed)")
    p.add_argument("--maps", action="store_true",
                   help="also compute the UMAP maps of every demo space now, so the dashboard opens them at once")
    p.add_argument("--progress", choices=PROGRESS_MODES, default="auto",
                   help="bar, one line per batch, none, or auto (a bar on a terminal)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Execute `embedscope demo`; returns 0 (ok), 3 (some items rejected) or 1."""
    from core.demo import DEMO_PROJECT, load_demo

    actor = local_actor(settings)
    # The demo writes as the system actor (an internal job): the user who starts it must be allowed to ingest.
    require(actor, Permission.INGEST, "loading the demo project")

    project = DEMO_PROJECT
    with opened_store(settings) as store:
        with progress_display(args.progress, "demo") as progress:
            # None: settings.demo_pretrained decides (EMBEDSCOPE_DEMO_PRETRAINED, default yes).
            pretrained = False if args.no_pretrained else None
            if args.detection:
                from core.demo_detection import DETECTION_PROJECT, load_detection_demo

                project = DETECTION_PROJECT
                reports = load_detection_demo(store, settings, progress, with_pretrained=pretrained)
            else:
                reports = load_demo(store, settings, progress, with_pretrained=pretrained)
        for report in reports:
            sys.stdout.write(report.summary() + "\n")
        if args.maps:
            from core.pipeline.maps import get_map

            for space in store.list_spaces(project):
                result = get_map(store, project, space.name, None, actor=actor)
                sys.stdout.write(f"map of {space.name}: {len(result)} points "
                                 f"({'fitted' if result.fitted else 'reused'})\n")
    sys.stdout.write(f"images in {settings.demo_dir}; open the dashboard and pick project {project!r}\n")
    statuses = {r.status for r in reports}
    return EXIT_BY_STATUS["failed" if "failed" in statuses else "partial" if "partial" in statuses else "ok"]
