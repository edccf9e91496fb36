"""The network level: networks run and trained on ecomac's datapaths.

datapath.py  resolve a datapath spec (golden/datapath.py) incl. `lut:FILE.v` circuits
kernels.py   bit-exact fast matrix products / convolutions on operand codes
"""
