"""``mtconnect`` live source: an MTConnect agent's probe/current/sample HTTP API."""
