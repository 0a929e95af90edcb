"""Compliance exports: what Aquifer knows, sent where governance and security teams already look, by the standards.

==================  ===================================================================================
``openlineage``     OpenLineage run events (START, COMPLETE, FAIL, ABORT) from every asset materialization,
                    with schema, data source, column lineage, tags, quality assertions and Delta versions
``decisions``       the decision-log shipper: tails the hash-chained log, exports each record as an
                    OpenTelemetry log record over OTLP/HTTP, at least once, resumable (``aquifer ship-decisions``)
``tracing``         OpenTelemetry spans of a request's stages, honouring an incoming ``traceparent``
==================  ===================================================================================

Each is off until configured, the standard way (``OPENLINEAGE_*`` / ``openlineage.yml``, ``OTEL_EXPORTER_OTLP_*``),
and none of them can fail or slow what it observes: the decision log stays the source of truth.
"""
