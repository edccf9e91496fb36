"""Bit-exact NumPy models of every ecomac arithmetic unit (vectorized)."""
