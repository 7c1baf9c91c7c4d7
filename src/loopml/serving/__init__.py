"""Serving: loading registered models once, checking inputs, and answering predictions."""
