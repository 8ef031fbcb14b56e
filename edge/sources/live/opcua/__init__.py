"""``opcua`` live source: an OPC UA client (asyncua), with the ``euromap77`` preset."""
