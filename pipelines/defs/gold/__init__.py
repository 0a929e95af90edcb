from pipelines.defs.gold import assets, checks

__all__ = ["assets", "checks"]
