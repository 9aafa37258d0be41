"""Transports shared by the hardware services (serial ports, cameras, ptys for the simulators)."""
