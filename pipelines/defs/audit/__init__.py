from pipelines.defs.audit import assets, checks

__all__ = ["assets", "checks"]
