"""The jobs process: trending, rollups, dedup pruning and retention."""
