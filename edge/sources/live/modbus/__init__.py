"""``modbus`` live source: Modbus TCP and RTU polling (pymodbus) from a register map."""
