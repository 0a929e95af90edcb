from pipelines.defs import audit, bronze, gold, platinum, silver

__all__ = ["audit", "bronze", "gold", "platinum", "silver"]
