"""decisions stage."""
