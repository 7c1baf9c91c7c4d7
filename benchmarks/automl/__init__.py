"""AutoML benchmark: loopml against LightGBM defaults, FLAML and AutoGluon (see README.md)."""
