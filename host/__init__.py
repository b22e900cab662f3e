"""Host side: checkpoint ingest, quantisation and packing, link protocol, device driver."""
