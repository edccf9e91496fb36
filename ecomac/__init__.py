"""ecomac: RTL generators for energy-efficient DNN arithmetic, with golden models and measurements."""
__version__ = "0.1.0"
