"""The service's routes, one router per concern: context, chat (the OpenAI-compatible gateway), audit (lineage and
decision records) and ops (health, readiness, metrics, API docs). Routes only translate HTTP to the domain: the
decisions are the policy's (:mod:`aquifer.service.retrieval`), the errors are mapped in :mod:`aquifer.service.app`."""
