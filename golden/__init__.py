"""Bit-exact Python models of the hdl blocks, and float reference models."""
