"""The one settings object. Every knob is an ``AQUIFER_*`` environment variable (or a ``.env`` entry)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]
"""The source checkout this module runs from (tests, benchmarks and doctests use it). Nothing at run time needs it:
an installed wheel is not a checkout."""

DEMO = Path(__file__).resolve().parent / "_demo"
"""The demo catalog and policies the wheel ships (``catalog/`` and ``policies/`` of the repository)."""


def default_dir(name: str) -> Path:
    """Where ``catalog/`` or ``policies/`` is when no setting says: in the working directory if it has one, else in
    the source checkout this code runs from, else the demo the installed package ships.

    >>> default_dir("policies").name
    'policies'
    """
    for candidate in (Path.cwd() / name, PROJECT_ROOT / name, DEMO / name):
        if candidate.is_dir():
            return candidate
    return Path(name)


class Settings(BaseSettings):
    """Where Aquifer keeps its data and reads its governance catalog.

    >>> Settings(data_dir="/tmp/aq").landing_dir
    PosixPath('/tmp/aq/landing')
    """

    model_config = SettingsConfigDict(env_prefix="AQUIFER_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path("data"), description="Holds landing/<source_id>/ and, by default, the lake.")
    lake_uri: str | None = Field(
        default=None,
        description="Root of the Delta lake: a local path or an s3:// / gs:// URI. Default: <data_dir>/lake.",
    )
    catalog_dir: Path = Field(
        default_factory=lambda: default_dir("catalog"),
        description="The governance catalog (YAML). Default: ./catalog, else the checkout's, else the packaged demo.",
    )
    storage_options: dict[str, str] = Field(
        default_factory=dict, description="deltalake storage options for object stores (credentials, region)."
    )
    environment: Literal["development", "production"] = Field(
        default="development",
        description="In production the demo agents' development tokens are refused.",
    )
    credentials_file: Path = Field(
        default_factory=lambda data: Path(data["catalog_dir"]) / "credentials.yaml",
        description="Agent token hashes (never the tokens). `aquifer agents issue-token` writes here. Default: "
        "<catalog_dir>/credentials.yaml.",
    )
    policy_dir: Path = Field(
        default_factory=lambda: default_dir("policies"),
        description="Rego policies (package = directory). Default: ./policies, else the checkout's, else the demo.",
    )
    policy_engine: Literal["embedded", "opa"] = Field(
        default="embedded", description="embedded: rego-cpp in-process (regopy); opa: a real OPA server at opa_url."
    )
    opa_url: str = Field(default="http://127.0.0.1:8181", description="OPA server for policy_engine=opa.")
    opa_token: str | None = Field(default=None, description="Bearer token for an OPA server started with authn.")
    policy_timeout_s: float = Field(
        default=2.0, gt=0, description="A decision slower than this is a denial (policy_engine_unavailable)."
    )
    policy_batch_size: int = Field(
        default=32,
        ge=1,
        le=10_000,
        description="Resource classes sent to the engine per call when deciding classes not decided yet (each call "
        "within policy_timeout_s).",
    )
    prefilter_warm: bool = Field(
        default=True,
        description="Decide every registered (agent, purpose, model)'s prefilter in the background whenever the "
        "policy or the index changes, so no first request pays for it.",
    )
    policy_reload_interval_s: float = Field(
        default=1.0, ge=0, description="How often the engine looks for edited policy or catalog files."
    )
    decision_log_dir: Path | None = Field(
        default=None, description="Write-ahead decision log (JSON lines). Default: <data_dir>/decisions."
    )
    index_uri: str | None = Field(
        default=None, description="LanceDB directory or URI of the chunk index. Default: <data_dir>/index."
    )
    index_ann_min_rows: int = Field(
        default=20_000,
        ge=0,
        description="From this many chunks on, the index gets an ANN vector index (IVF_HNSW_SQ) plus scalar indexes on "
        "the filter columns; below it, exact search is faster (docs/benchmarks.md).",
    )
    index_nprobes: int | None = Field(
        default=None, ge=1, description="IVF partitions searched per query (recall vs speed). Default: all."
    )
    index_refine_factor: int = Field(
        default=10, ge=1, description="Candidates re-ranked with full vectors per result (recall vs speed)."
    )
    near_duplicate_similarity: float = Field(
        default=0.95,
        gt=0,
        description="Chunks whose embeddings are at least this similar (cosine) to a better-scoring chunk are "
        "collapsed into it; above 1 disables the collapse.",
    )
    gateway_top_k: int = Field(
        default=6, ge=1, le=50, description="Chunks retrieved per chat completion (before collapse and packing)."
    )
    gateway_context_tokens: int = Field(
        default=1024, ge=1, description="Token budget for the context injected into a chat completion."
    )
    gateway_conversation_tokens: int = Field(
        default=2560,
        ge=1,
        description="Token budget for the context of a whole conversation: when a turn's new sources would pass it, "
        "the context starts again from that turn.",
    )
    gateway_follow_up_tokens: int = Field(
        default=160,
        ge=0,
        description="Token budget for the new sources of each later turn of a conversation (the earlier turns' "
        "sources stay in the prompt, so its cached prefix is reused).",
    )
    gateway_connect_timeout_s: float = Field(
        default=3.0, gt=0, description="Longest wait to connect to a model endpoint before answering 502."
    )
    public_url: str | None = Field(
        default=None,
        description="The service's URL as its clients reach it (behind a proxy: the proxy's), e.g. "
        "https://aquifer.example.com. Names the MCP endpoint in its protected-resource metadata (RFC 9728) and "
        "admits that host to /mcp. Default: the URL of each request.",
    )
    mcp_allowed_hosts: list[str] = Field(
        default_factory=lambda: ["127.0.0.1:*", "localhost:*", "[::1]:*"],
        description="Host headers /mcp answers (DNS-rebinding protection; public_url's host is added). An entry "
        "ending in :* admits any port.",
    )
    mcp_max_sessions: int = Field(default=1000, ge=1, description="Open MCP sessions at most (over Streamable HTTP).")
    openlineage_namespace: str = Field(
        default="aquifer",
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@-]*$",
        description="The OpenLineage namespace of Aquifer's jobs (one per asset). Where events go is the client's "
        "own configuration: openlineage.yml, OPENLINEAGE_CONFIG, OPENLINEAGE_URL or OPENLINEAGE__TRANSPORT__*.",
    )
    openlineage_retry_after_s: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="After an OpenLineage event could not be delivered, events of this many seconds are dropped "
        "(counted and logged) instead of each waiting out the client's retries; 0 tries every event.",
    )
    bronze_max_file_bytes: int = Field(
        default=128 * 2**20, gt=0, description="A landing file larger than this is quarantined (file_too_large)."
    )
    bronze_max_record_bytes: int = Field(
        default=16 * 2**20,
        gt=0,
        description="A Markdown file or CSV row larger than this is quarantined (record_too_large).",
    )
    bronze_max_line_bytes: int = Field(
        default=2**20, gt=0, description="A JSON line longer than this is quarantined (line_too_long)."
    )
    bronze_max_depth: int = Field(
        default=64,
        ge=1,
        description="A JSON record or front matter nesting deeper than this is quarantined (nesting_too_deep).",
    )
    bronze_max_nodes: int = Field(
        default=200_000,
        ge=1,
        description="A record that expands to more values than this (YAML aliases) is quarantined (expands_too_large).",
    )
    decision_log_segment_bytes: int = Field(
        default=64 * 1024 * 1024, gt=1024, description="A log segment rotates when it reaches this size."
    )
    decision_export_fields: list[str] | None = Field(
        default=None,
        description="Top-level decision-record fields `aquifer ship-decisions` exports (a JSON list of names of "
        "aquifer.audit.records.SCHEMA). The chain (seq, decision_id, time, log, prev, hash, segment) always leaves; "
        "text never does. Default: every field (docs/decision-export.md).",
    )
    decision_export_hash_users: bool = Field(
        default=False,
        description="Export `user` and the `user:` principals of resources as HMAC-SHA256 (decision_export_hash_key) "
        "instead of in clear.",
    )
    decision_export_hash_groups: bool = Field(
        default=False, description="Also export `user_groups` and `group:` principals as HMAC-SHA256."
    )
    decision_export_hash_key: SecretStr | None = Field(
        default=None,
        validate_default=True,
        description="The HMAC key of the hashed user ids (at least 16 characters; secret).",
    )
    decision_export_batch_records: int = Field(
        default=512, ge=1, le=10_000, description="Decision records per OTLP export request at most."
    )
    decision_export_poll_interval_s: float = Field(
        default=1.0, gt=0, le=3600, description="How often the shipper looks for new records once it is caught up."
    )
    decision_export_backoff_base_s: float = Field(
        default=0.5, gt=0, le=600, description="First retry delay after a failed export (exponential, full jitter)."
    )
    decision_export_backoff_max_s: float = Field(
        default=60.0, gt=0, le=3600, description="Longest retry delay after failed exports."
    )
    decision_export_cursor: Path | None = Field(
        default=None,
        description="The shipper's durable cursor (last acknowledged seq). Default: "
        "<data_dir>/export/decisions.cursor.json.",
    )

    @field_validator("decision_export_fields")
    @classmethod
    def _known_decision_fields(cls, names: list[str] | None) -> list[str] | None:
        from aquifer.audit.records import SCHEMA

        for name in names or ():
            if name not in SCHEMA:
                msg = f"AQUIFER_DECISION_EXPORT_FIELDS: {name!r} is not a decision-record field ({', '.join(SCHEMA)})"
                raise ValueError(msg)
        return names

    @field_validator("decision_export_backoff_max_s")
    @classmethod
    def _backoff_cap_above_base(cls, cap: float, info: ValidationInfo) -> float:
        if cap < info.data.get("decision_export_backoff_base_s", 0):
            raise ValueError("below AQUIFER_DECISION_EXPORT_BACKOFF_BASE_S")
        return cap

    @field_validator("decision_export_hash_key")
    @classmethod
    def _hash_key_when_hashing(cls, secret: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        # its strength is checked by the shipper (aquifer.export.decisions), whose errors never repeat the key
        if secret is None and (
            info.data.get("decision_export_hash_users") or info.data.get("decision_export_hash_groups")
        ):
            raise ValueError("not set, but user ids are to be hashed (AQUIFER_DECISION_EXPORT_HASH_USERS/_GROUPS)")
        return secret

    @property
    def landing_dir(self) -> Path:
        return self.data_dir / "landing"

    @property
    def index_location(self) -> str:
        return self.index_uri or str((self.data_dir / "index").resolve())

    @property
    def decisions_dir(self) -> Path:
        return self.decision_log_dir or self.data_dir / "decisions"

    @property
    def lake_root(self) -> str:
        if self.lake_uri:
            return self.lake_uri.rstrip("/")
        return str((self.data_dir / "lake").resolve())


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
