"""Use cases that orchestrate readers, embedders, the store and analysis (ingest, maps, analyse...)."""
