from pipelines.defs.bronze import assets, checks

__all__ = ["assets", "checks"]
