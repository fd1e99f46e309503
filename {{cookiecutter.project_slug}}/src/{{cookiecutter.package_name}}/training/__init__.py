"""`train`, `evaluate` and `tune`: fitting and scoring a model, with its baselines and plots."""
