"""Host side: checkpoint ingest, quantisation and packing, link protocol, device driver."""


def __getattr__(name):
    # `tritium.host.Device` without importing pyserial/numpy for every host module
    if name == "Device":
        from .device import Device
        return Device
    raise AttributeError(name)
