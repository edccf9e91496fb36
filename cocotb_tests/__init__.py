"""cocotb testbenches (tb_*.py) and the pytest functions that run them (test_*.py)."""
