"""graphrl."""
