"""The four layers of trust. Each module holds the pure transform of one layer and the function that promotes
one dataset into it; Dagster assets in ``pipelines/`` are thin wrappers around these.

- :mod:`.bronze`   landing files -> one row per record, raw bytes kept, nothing dropped
- :mod:`.silver`   records -> validated documents with PII spans; rejects -> quarantine
- :mod:`.gold`     documents -> token-aware chunks, flagged (superseded, near-duplicate, untrusted)
- :mod:`.platinum` chunks -> certified context, the only layer served to agents
"""
