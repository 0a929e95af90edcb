from pipelines.defs import bronze, gold, platinum, silver

__all__ = ["bronze", "gold", "platinum", "silver"]
