"""The governed retrieval service (FastAPI): ``aquifer serve`` runs :func:`aquifer.service.app.create_app` with
uvicorn. Kept empty on purpose: ``aquifer.client`` imports ``aquifer.service.schemas``, and importing this package
must not load the server.

==========================  ==================================================================================
``app``                     lifespan, routers, the one error -> HTTP mapping
``routes/``                 ``context``, ``chat`` (the OpenAI-compatible gateway), ``audit``, ``ops``
``deps``                    typed dependencies (the agent, the shared resources)
``errors``                  domain errors, their status table and the two error shapes
``retrieval``               governed retrieval: decide, prefilter, search, re-check, log
``packing``                 redaction, near-duplicate collapse, token budget, receipts
``conversation``            chat turns and their rendered context
``gateway``                 the upstream model call: forward, stream, outcome
``warm``                    decisions made before the first request
``metrics``, ``schemas``    Prometheus and stage timings; the API's models (shared with the client)
==========================  ==================================================================================
"""
