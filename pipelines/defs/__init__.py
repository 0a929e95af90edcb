from pipelines.defs import audit, bronze, gold, index, platinum, silver

__all__ = ["audit", "bronze", "gold", "index", "platinum", "silver"]
