"""L0: settings, errors, logging and the clock. Imports nothing else from clawfleet."""
