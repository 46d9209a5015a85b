"""Command-line entry points of l1db."""
