"""Board tops and the open FPGA flow (yosys / nextpnr from the YoWASP wheels)."""
