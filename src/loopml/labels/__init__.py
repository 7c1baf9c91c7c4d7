"""The label store: labels on dataset items, their review, and applying them as versions."""
