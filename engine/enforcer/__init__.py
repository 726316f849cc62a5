"""enforcer stage."""
