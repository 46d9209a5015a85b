"""Example configuration files, shipped as package data."""
