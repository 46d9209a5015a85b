"""l1db: the L1 (Alert Production) database API, schema and indexing."""
