"""ClawFleet."""
