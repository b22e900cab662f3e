"""Host side: the token-core compiler, weight placement and the device driver.

Checkpoint ingest and quantisation are in :mod:`tritium.golden`, the wire protocol in
:mod:`tritium.protocol` (docs/engines.md, Layers).
"""


def __getattr__(name):
    # `tritium.host.Device` without importing pyserial/numpy for every host module
    if name == "Device":
        from .device import Device
        return Device
    raise AttributeError(name)
