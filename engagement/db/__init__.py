"""The database layer: connection pools, named SQL from sql/queries, the migration runner
over sql/migrations, and the storage profiles."""
