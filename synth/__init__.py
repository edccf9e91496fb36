"""Yosys synthesis flows, netlist statistics and the energy model."""
