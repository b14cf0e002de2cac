"""Detection datasets in: images with label / prediction boxes from COCO files, box manifests, YOLO folders.

The one import place for readers and types (the pieces live in detections_base / _coco / _manifest / _yolo).
"""

from core.datasets.detections_base import (
    BOX_FORMATS,
    EDGE_TOLERANCE_PX,
    Box,
    BoxFormat,
    DetectionSet,
    DetObject,
    object_key,
    parse_box,
)
from core.datasets.detections_coco import read_coco
from core.datasets.detections_manifest import read_box_manifest
from core.datasets.detections_yolo import read_yolo, yolo_images

__all__ = [
    "BOX_FORMATS",
    "EDGE_TOLERANCE_PX",
    "Box",
    "BoxFormat",
    "DetObject",
    "DetectionSet",
    "object_key",
    "parse_box",
    "read_box_manifest",
    "read_coco",
    "read_yolo",
    "yolo_images",
]
