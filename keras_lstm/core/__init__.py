"""Layer 0: the TensorFlow-free core every other layer builds on (errors, atomic files, schemas, reporting)."""

__all__ = []
