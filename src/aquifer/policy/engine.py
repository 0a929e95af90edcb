"""The policy engine Aquifer calls: one interface over both backends, fail-closed, cached per resource class.

Every failure (policy that does not compile, evaluation error, timeout, unreachable OPA, malformed answer) becomes
a denial with reason ``policy_engine_unavailable``; nothing is ever allowed by default.

Decisions depend only on (request context, resource class, policy revision), so each is computed once and cached;
the cache is dropped whenever the revision changes. The engine looks for edited files under ``policies/`` and
``catalog/`` at most every ``reload_interval_s`` and recompiles when their content changed: a reviewer edits a
line of Rego and the next decision uses it, without a restart.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from aquifer.catalog import Catalog, CatalogError
from aquifer.policy.backends import Backend, EmbeddedBackend, OpaBackend, PolicyEngineUnavailable
from aquifer.policy.decision import BatchDecision, Decision, RequestContext, Resource, unique
from aquifer.policy.source import PolicySource, fingerprint
from aquifer.settings import Settings

UNAVAILABLE_REVISION = "unavailable"


class PolicyEngine:
    """Decide requests and resources.

    >>> from aquifer.settings import PROJECT_ROOT
    >>> engine = PolicyEngine(EmbeddedBackend(), PROJECT_ROOT / "policies", PROJECT_ROOT / "catalog")
    >>> ctx = RequestContext("marketing_assistant", "marketing", "external_gpt")
    >>> batch = engine.decide(ctx, [Resource("product_docs", "public"), Resource("hr_case_notes", "confidential")])
    >>> [d.allow for d in batch.resources]
    [True, False]
    >>> batch.resources[1].reasons
    ['above_model_ceiling', 'clearance_below_classification', 'model_locality', 'purpose_not_allowed_for_dataset']
    """

    def __init__(
        self,
        backend: Backend,
        policy_dir: Path,
        catalog_dir: Path,
        *,
        timeout_s: float = 2.0,
        reload_interval_s: float = 1.0,
        cache_size: int = 100_000,
        batch_size: int = 32,
    ) -> None:
        self.backend = backend
        self.policy_dir, self.catalog_dir = policy_dir, catalog_dir
        self.timeout_s, self.reload_interval_s, self.cache_size = timeout_s, reload_interval_s, cache_size
        # Classes not decided yet go to the backend at most this many per call, each call within timeout_s: a cold
        # request over a large corpus is several bounded calls, not one that outlives the timeout.
        self.batch_size = batch_size
        self._lock = threading.RLock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aquifer-policy")
        self._cache: dict[tuple[RequestContext, Resource | None], Decision] = {}
        self._source: PolicySource | None = None
        self._error: str | None = None
        self._revision = UNAVAILABLE_REVISION
        self._fingerprint: tuple[tuple[str, int, int], ...] = ()
        self._checked_at = 0.0
        self._needs_reload = True
        self.reload()

    @classmethod
    def from_settings(cls, settings: Settings) -> PolicyEngine:
        backend: Backend
        if settings.policy_engine == "opa":
            backend = OpaBackend(settings.opa_url, token=settings.opa_token, timeout_s=settings.policy_timeout_s)
        else:
            backend = EmbeddedBackend()
        return cls(
            backend,
            settings.policy_dir,
            settings.catalog_dir,
            timeout_s=settings.policy_timeout_s,
            reload_interval_s=settings.policy_reload_interval_s,
            batch_size=settings.policy_batch_size,
        )

    # -- state ---------------------------------------------------------------------------------------------------

    @property
    def revision(self) -> str:
        """Content hash of the policy modules and registry data in force (``unavailable`` if unreadable)."""
        self._maybe_reload()
        return self._revision

    @property
    def error(self) -> str | None:
        """Why the engine cannot decide right now, or None when it can."""
        self._maybe_reload()
        return self._error

    @property
    def catalog(self) -> Catalog:
        self._maybe_reload()
        if self._source is None:
            msg = f"the catalog could not be read: {self._error}"
            raise PolicyEngineUnavailable(msg)
        return self._source.catalog

    def reload(self) -> None:
        """Re-read the files now; recompile if their content (the revision) changed."""
        with self._lock:
            self._checked_at = time.monotonic()
            self._fingerprint = fingerprint(self.policy_dir, self.catalog_dir)
            try:
                source = PolicySource.read(self.policy_dir, self.catalog_dir)
            except (OSError, CatalogError, ValueError) as exc:
                self._fail(UNAVAILABLE_REVISION, f"policy or catalog files cannot be read: {exc}")
                self._source = None
                return
            if source.revision == self._revision and not self._needs_reload and self._error is None:
                self._source = source
                return
            self._source = source
            try:
                self._run(self.backend.load, source)
            except PolicyEngineUnavailable as exc:
                self._fail(source.revision, str(exc))
                return
            self._revision, self._error, self._needs_reload = source.revision, None, False
            self._cache.clear()

    def _fail(self, revision: str, why: str) -> None:
        self._revision, self._error, self._needs_reload = revision, why, True
        self._cache.clear()

    def _maybe_reload(self) -> None:
        # At most once per interval, also while broken: an unreachable OPA is retried, not hammered, and until a
        # reload succeeds every decision is a denial (``_error`` is set whenever ``_needs_reload`` is).
        if time.monotonic() - self._checked_at < self.reload_interval_s:
            return
        with self._lock:
            if fingerprint(self.policy_dir, self.catalog_dir) != self._fingerprint or self._needs_reload:
                self.reload()
            else:
                self._checked_at = time.monotonic()

    def _run(self, fn: Any, *args: Any) -> Any:
        """Run a backend call on the engine's one worker thread, bounded by ``timeout_s``."""
        future = self._executor.submit(fn, *args)
        try:
            return future.result(timeout=self.timeout_s)
        except FutureTimeout:
            # The stuck call keeps the old thread and backend state: start over on a fresh thread and reload.
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aquifer-policy")
            msg = f"the {self.backend.name} policy engine gave no answer within {self.timeout_s:g} s"
            # The abandoned call may still be using the backend: deny until a reload has built a fresh one.
            self._fail(self._revision, f"{msg}; reloading")
            raise PolicyEngineUnavailable(msg) from None
        except PolicyEngineUnavailable:
            raise
        except Exception as exc:
            msg = f"the {self.backend.name} policy engine failed: {type(exc).__name__}: {exc}"
            raise PolicyEngineUnavailable(msg) from exc

    # -- decisions -----------------------------------------------------------------------------------------------

    def decide(self, context: RequestContext, resources: Sequence[Resource] = ()) -> BatchDecision:
        """The request-level decision and one decision per resource (in order), under one revision.

        Classes not decided yet go to the backend ``batch_size`` at a time, each batch under the lock and within
        ``timeout_s``, so concurrent requests interleave with a long cold batch instead of waiting for all of it. A
        revision change in between starts the batch over under the new revision (at most twice)."""
        self._maybe_reload()
        for _ in range(3):
            batch = self._decide_once(context, resources)
            if batch is not None:
                return batch
        denial = Decision.unavailable("the policy kept changing while this request was being decided; retry it")
        return BatchDecision(context, self._revision, denial, [denial] * len(resources))

    def _decide_once(self, context: RequestContext, resources: Sequence[Resource]) -> BatchDecision | None:
        """One attempt at :meth:`decide`; None when the revision changed before it finished."""
        with self._lock:
            revision = self._revision
            denial = self._refusal(context)
            if denial is not None:
                return BatchDecision(context, revision, denial, [denial] * len(resources))
            try:
                request = self._cache.get((context, None))
                if request is None:
                    request = _parse(self._run(self.backend.evaluate, "request", context.as_input()), "request")
                    self._remember((context, None), request)
            except PolicyEngineUnavailable as exc:
                denial = Decision.unavailable(str(exc))
                return BatchDecision(context, revision, denial, [denial] * len(resources))
            missing = [r for r in unique(resources) if (context, r) not in self._cache and not r.invalid_fields()]
        fresh: dict[Resource, Decision] = {}
        for start in range(0, len(missing), self.batch_size):
            with self._lock:
                if self._revision != revision:
                    return None
                denial = self._refusal(context)
                if denial is not None:
                    return BatchDecision(context, revision, denial, [denial] * len(resources))
                todo = [r for r in missing[start : start + self.batch_size] if (context, r) not in self._cache]
                try:
                    answer = self._run(self.backend.decide_many, context.as_input(), [r.as_input() for r in todo])
                    if not isinstance(answer, list) or len(answer) != len(todo):
                        msg = f"decisions returned {type(answer).__name__}, expected a list of {len(todo)}"
                        raise PolicyEngineUnavailable(msg)
                    decided = [_parse(doc, "decisions") for doc in answer]
                except PolicyEngineUnavailable as exc:
                    denial = Decision.unavailable(str(exc))
                    return BatchDecision(context, revision, denial, [denial] * len(resources))
                for resource, decision in zip(todo, decided, strict=True):
                    fresh[resource] = decision
                    self._remember((context, resource), decision)
        with self._lock:
            found = self._lookup(context, resources, fresh)
            if found is None or self._revision != revision:
                return None
        return BatchDecision(context, revision, request, found)

    def _refusal(self, context: RequestContext) -> Decision | None:
        """The denial of a context no engine may be asked about now (call under the lock), or None."""
        if self._error is not None:
            return Decision.unavailable(self._error)
        invalid = context.invalid_fields()
        if invalid:  # never shown to an engine: rego-cpp does not escape the strings of its answers
            return Decision.invalid([f"input.{name}" for name in invalid])
        return None

    def _lookup(
        self, context: RequestContext, resources: Sequence[Resource], fresh: dict[Resource, Decision]
    ) -> list[Decision] | None:
        """Each resource's decision, or None when one was evicted meanwhile (a full cache drops its oldest tenth)."""
        cache = self._cache
        out = []
        for r in resources:
            decided = fresh.get(r) or cache.get((context, r))
            if decided is None:
                invalid = r.invalid_fields()
                if not invalid:
                    return None
                # a class that is not made of identifiers is never shown to an engine
                decided = Decision.invalid([f"input.resource.{name}" for name in invalid])
            out.append(decided)
        return out

    def _remember(self, key: tuple[RequestContext, Resource | None], decision: Decision) -> None:
        # Full: the oldest decisions go first, a tenth at a time (decisions are per user since users are in the
        # context; dropping all at once made every user's next request cold together).
        if len(self._cache) >= self.cache_size:
            for old in list(itertools.islice(self._cache, max(1, self.cache_size // 10))):
                del self._cache[old]
        self._cache[key] = decision

    def evaluate(self, entrypoint: str, input_doc: dict[str, Any]) -> Any:
        """The raw answer of an entrypoint for any input, uncached (``aquifer policy eval``). Raises
        :class:`PolicyEngineUnavailable` when there is none."""
        self._maybe_reload()
        with self._lock:
            if self._error is not None:
                raise PolicyEngineUnavailable(self._error)
            return self._run(self.backend.evaluate, entrypoint, input_doc)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _parse(doc: Any, entrypoint: str) -> Decision:
    try:
        return Decision.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<document>"
        msg = f"{entrypoint} returned a malformed decision ({where}: {first['msg']})"
        raise PolicyEngineUnavailable(msg) from exc
