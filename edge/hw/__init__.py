"""Transports shared by the hardware services (serial ports, ptys for the simulators)."""
