"""MLflow runs and their lineage (code, data, environment), and the offline fallback store."""
