"""Protocol stand-ins run as real servers on loopback (OPC UA, Modbus, SLMP, MTConnect,
Sparkplug B, EUROMAP 77), and a live-source driver run on a thread."""
