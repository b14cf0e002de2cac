"""Pure problem finders over one embedding space: arrays in, arrays out (no store, no I/O).

knn (the shared cosine kNN graph), outliers, mislabels, duplicates, clusters (communities of the
kNN graph, error clusters), novelty and drift (comparing two sets).
"""
