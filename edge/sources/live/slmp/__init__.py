"""``slmp`` live source: Mitsubishi MELSEC over SLMP/MC protocol 3E binary frames."""
