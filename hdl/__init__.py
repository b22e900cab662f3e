"""Amaranth components. Each takes its config from :mod:`tritium.config`."""
