"""The HNSW, quantization and search settings of space shards / collections, chosen by measurement."""

from __future__ import annotations

from dataclasses import dataclass

from core.types import LABEL, PREDICTION

FLOAT32_BYTES = 4


@dataclass(frozen=True)
class SpaceIndex:
    """HNSW and quantization settings of new spaces (values: SPACE_INDEX below). Existing spaces
    keep the settings they were created with (Edge and Qdrant load the stored config)."""

    m: int
    ef_construct: int
    full_scan_points: int  # filters matching fewer points than this per segment: exact scan (payload index)
    payload_m: int  # extra links per value of the linked payload fields; 0: none
    int8: bool  # scalar int8 quantization (the build and the search compare int8; results are rescored)
    linked_fields: tuple[str, ...] = ()  # keyword fields that get payload links (payload_m)
    max_indexing_threads: int = 0  # 0: the engine picks (all cores)
    indexing_threshold_kb: int | None = None  # None: the engine's default (segments past 10 MB of vectors)

    def full_scan_kb(self, dim: int) -> int:
        """full_scan_points as the engine's setting: KB of float32 vectors of size dim."""
        return max(1, self.full_scan_points * dim * FLOAT32_BYTES // 1024)


# Chosen by measurement (issue 11; clustered 512-d points, benchmarks/scale.py's data; the probes
# behind these figures built shards with each setting and compared recall@10 with numpy's exact top 10):
# * Build: Edge's defaults (m 16, ef_construct 100, float32, payload links on every keyword field)
#   took 53 s wall at 100k unloaded and > 15 min at 1M; int8 is what made 1M buildable (260 s wall
#   at 1M with ef_construct 64 and links on label and prediction: the fields the pages filter on).
# * Filters: the engine plans per segment. Below full_scan_points matching points it scores them
#   all (payload index + int8, rescored: exact, ~8 ms per 100k points); above, it walks the graph.
#   The graph fails filters that follow the clusters when the query lies elsewhere (a 10 % label
#   filter: recall 0.47 at 1M, 0.69 at 300k even with payload links and ACORN; a 31 % one: 0.37),
#   and unlinked fields at 2-10 % (0.00-0.02 without ACORN). So the exact path takes every filter
#   under 150k points: 15 % of a 1M segment (1M: recall 1.00 at 0.1 / 2 / 10 %, label and split
#   filters), and segments under 150k points are scanned whole (<= ~12 ms). Edge merges an optimized
#   space into one segment (its indexing does not honour max_segment_size), so beyond ~1M points
#   per shard 10 % filters walk the graph again: docs/scaling.md.
# * The graph: with no payload subgraphs (values under full_scan_points get none) ef_construct 64
#   gave recall 0.94 unfiltered at 1M (hnsw_ef 1024). At 300k: ef_construct 64 -> 0.960 / 0.986 at
#   hnsw_ef 512 / 1024, ef_construct 128 -> 0.990 / 0.994 for 1.4x the build CPU (96 vs 69 s);
#   filters of 88 % alike. At 1M (ef_construct 128, benchmarks/scale.py's 100 queries): recall
#   0.966 / 0.973 / 0.988 at hnsw_ef 1024 / 2048 / 4096, p95 6.9 / 5.0 / 7.0 ms (another benchmark
#   step running meanwhile): hnsw_ef 4096. Oversampling the int8 candidates 2 -> 8 changed nothing.
#   ACORN (2-hop search) rescues unlinked fields at 10-50 % (0.02 -> 0.97) for ~5x the cost; below
#   15 % at 1M the exact path answers first, so it matters from 15 % to 50 %.
SPACE_INDEX = SpaceIndex(m=16, ef_construct=128, full_scan_points=150_000, payload_m=16, int8=True,
                         linked_fields=(LABEL, PREDICTION))
SEARCH_HNSW_EF = 4096
SEARCH_OVERSAMPLING = 2.0
SEARCH_ACORN_MAX_SELECTIVITY = 0.5
