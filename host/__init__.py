"""Host side: the device driver (the engines' drivers, compiler and weight placement are in
their packages, ``tritium.engines.NAME``).

Checkpoint ingest and quantisation are in :mod:`tritium.golden`, the wire protocol in
:mod:`tritium.protocol` (docs/engines.md, Layers).
"""


def __getattr__(name):
    # `tritium.host.Device` without importing pyserial/numpy for every host module
    if name == "Device":
        from .device import Device
        return Device
    raise AttributeError(name)
