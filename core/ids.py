"""Deterministic point ids: the same project/dataset/item key always maps to the same id."""

from __future__ import annotations

import uuid

# A fixed namespace, so ids are stable across machines, versions and stores.
_NAMESPACE = uuid.UUID("6f1d2c7e-5b1a-4c52-9a0e-3f5e8d2b7c41")


def point_id(project: str, dataset: str, key: str) -> str:
    """Return the uuid5 point id of one item; re-ingesting the same item overwrites it."""
    return str(uuid.uuid5(_NAMESPACE, f"{project}/{dataset}/{key}"))


def object_id(project: str, dataset: str, key: str, source: str, index: int) -> str:
    """Return the id of a detection object (source is 'label' or 'prediction')."""
    return str(uuid.uuid5(_NAMESPACE, f"{project}/{dataset}/{key}#{source}/{index}"))
