"""Real servers and processes on loopback that the tests and the benchmarks both start.

A development-only package (not shipped in the wheel; production code never imports it):

- :mod:`harness.services`: Mosquitto, InfluxDB and PostgreSQL from the Debian binaries on
  free ports;
- :mod:`harness.procs`: gateway agent and ingest child processes;
- :mod:`harness.witness`: an MQTT subscriber that records what the broker accepted;
- :mod:`harness.wait`: :func:`~harness.wait.wait_for` (poll a condition) and
  :func:`~harness.wait.pause` (a fixed wait that says why);
- :mod:`harness.loadgen`: synthetic packed machine messages and a QoS 1 publisher;
- :mod:`harness.live`: protocol stand-ins (OPC UA, Modbus, SLMP, MTConnect, Sparkplug,
  EUROMAP 77) run as real servers.
"""
