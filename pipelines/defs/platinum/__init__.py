from pipelines.defs.platinum import assets, checks

__all__ = ["assets", "checks"]
