"""The Parquet warehouse, storage only: raw, clean, system and mart tables committed atomically
(a folder or an S3 bucket), raw → clean loading, housekeeping, read with DuckDB."""
