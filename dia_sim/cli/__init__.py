"""Command-line entry points of dia_sim."""
