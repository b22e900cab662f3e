"""The built-in engines, one package each (docs/engines.md, "How to add an engine").

Each package's top module is spec layer: its ``ENGINE`` description
(:class:`tritium.engine.Engine`) and the facts it names (START id and fields, counters).
:mod:`tritium.registry` lists them.
"""
