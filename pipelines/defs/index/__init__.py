from pipelines.defs.index import assets, checks

__all__ = ["assets", "checks"]
