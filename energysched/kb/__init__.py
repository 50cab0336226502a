"""The knowledge base: EnergyProfiles as pure, immutable values (no I/O)."""
