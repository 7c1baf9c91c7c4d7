"""Data: sources, dataset versions, schema, quality and labels (grows with the data issue)."""
