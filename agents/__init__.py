"""Example agents calling the Aquifer API (see agents/README.md)."""
