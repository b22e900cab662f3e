"""Bit-exact Python models of the hdl blocks, float reference models, and what they run on:
quantisation, checkpoint ingest (``checkpoint``) and the torch-free model shapes (``shapes``).
"""
