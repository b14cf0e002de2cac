"""The HNSW, quantization and search settings of space shards / collections, chosen by measurement."""

from __future__ import annotations

from dataclasses import dataclass

from core.types import LABEL, PREDICTION


@dataclass(frozen=True)
class SpaceIndex:
    """HNSW and quantization settings of new spaces (values: SPACE_INDEX below). Existing spaces
    keep the settings they were created with (Edge and Qdrant load the stored config)."""

    m: int
    ef_construct: int
    full_scan_threshold_kb: int  # filters matching fewer vectors (KB of float32) than this per segment: exact
    payload_m: int  # extra links per value of the linked payload fields; 0: none
    int8: bool  # scalar int8 quantization (the build and the search compare int8; results are rescored)
    linked_fields: tuple[str, ...] = ()  # keyword fields that get payload links (payload_m)
    max_indexing_threads: int = 0  # 0: the engine picks (all cores)
    indexing_threshold_kb: int | None = None  # None: the engine's default (segments past 10 MB of vectors)


# Chosen by measurement (issue 11: 100k x 512-d clustered points, 2 Edge segments; CPU seconds of
# optimize() because the 2 cores were shared at load 12-18; table in benchmarks/search.py's runs):
# * Edge's defaults (m 16, ef_construct 100, float32, payload links on every keyword field):
#   53 s wall at 100k unloaded, > 15 min at 1M. int8 + ef_construct 64 + no payload links: 16 CPU-s
#   at 100k; + links on two fields: 25 CPU-s (same recall as ef_construct 100); links on every field
#   (dataset and kind hold all points) and ef_construct 100: 41 CPU-s. HNSW builds grow ~n^1.5 here
#   (279 s at 300k vs 53 s at 100k), so 1M ~ 32x 100k: ~13.5 CPU-min, ~7 min wall on 2 cores, with
#   links on label and prediction only (the fields the pages filter on).
# * Filters: without payload links filtered HNSW collapses (recall 0.00 at 2 %, 0.03 at 10 %);
#   with them 0.97 / 0.95; ACORN (2-hop search) brings both to 1.00 but costs ~50x a plain search,
#   so it runs only below 15 % selectivity, and filters under ~3 % of 1M never reach the graph:
#   full_scan_threshold 30 MB of float32 vectors (15k points of 512-d per segment) sends them to
#   the payload index + exact scan (recall 1.00, ~1 ms per 2k points).
# * Unfiltered: this data is hard (near-isotropic clusters): recall 0.83 / 0.91 / 0.94 at hnsw_ef
#   128 / 256 / 512 on int8; rescoring 2x oversampled int8 candidates with float32 gives 0.86 /
#   0.96 / 0.99: hnsw_ef 512 with oversampling 2 (p50 ~2 ms at 100k under load 13-18).
SPACE_INDEX = SpaceIndex(m=16, ef_construct=64, full_scan_threshold_kb=30_000, payload_m=16, int8=True,
                         linked_fields=(LABEL, PREDICTION))
SEARCH_HNSW_EF = 512
SEARCH_OVERSAMPLING = 2.0
SEARCH_ACORN_MAX_SELECTIVITY = 0.15
