"""The Parquet warehouse: raw → clean → marts, committed atomically, read with DuckDB."""
