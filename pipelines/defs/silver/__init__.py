from pipelines.defs.silver import assets, checks

__all__ = ["assets", "checks"]
