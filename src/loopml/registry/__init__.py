"""The model registry: versions from trainings, quality gates, stages, model cards."""
