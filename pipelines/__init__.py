"""Aquifer's Dagster code location (loaded by ``workspace.yaml``)."""
