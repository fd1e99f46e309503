"""What every part stands on: params.yaml and its schema, paths, errors, checksums, the run lock."""
