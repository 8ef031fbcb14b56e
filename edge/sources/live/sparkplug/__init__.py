"""``sparkplug`` live source: a plant's Sparkplug B edge nodes, consumed from a broker."""
