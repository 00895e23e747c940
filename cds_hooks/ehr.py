"""The EHR's data for one hook call: prefetch first; otherwise a read or search on the EHR's FHIR
server (`fhirServer` with `fhirAuthorization`, 2 s timeout) (CRD found-5, found-24).

CDS Hooks prefetch semantics: a missing key was not provided (we may query), a `null` value means
the EHR has no such data, an OperationOutcome means the EHR could not get it (no data for us).

A query that fails (timeout, connection error, an answer other than 200 or 404, a body that is
not JSON) is a technical failure: required data then answers 412 (found-32); optional data is
left out and the failure kept (`failure`), so that what depends on it is answered
`indeterminate` (resp-43). All EHR queries of one call share a time budget (`EHR_BUDGET_SECONDS`)
so that the answer stays within CRD's 5-second target (found-2) however slowly the EHR answers.

Reads that may query the EHR run concurrently (`gather_reads`); without a `fhirServer` no read
can wait on anything, so they run one after another without a task each.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from cds_hooks.request import HookRequest

log = logging.getLogger("greenlight.crd.ehr")

EHR_TIMEOUT_SECONDS = 2.0  # one query
EHR_BUDGET_SECONDS = 3.5  # every query of one hook call, from the first

Read = TypeVar("Read")


class EhrDataUnavailableError(Exception):
    """Data was not prefetched and could not be queried from the EHR."""

    def __init__(self, key: str, why: str) -> None:
        self.key = key
        self.why = why
        super().__init__(f"{key}: {why}")


def bundle_resources(value: Any) -> list[dict[str, Any]]:
    """Resources of a searchset/collection Bundle, or the resource itself."""
    if not isinstance(value, dict):
        return []
    if value.get("resourceType") == "Bundle":
        return [
            entry["resource"]
            for entry in value.get("entry") or []
            if isinstance(entry, dict)
            and isinstance(entry.get("resource"), dict)
            and entry["resource"].get("resourceType") != "OperationOutcome"
        ]
    if value.get("resourceType") == "OperationOutcome":
        return []
    return [value]


@dataclass(frozen=True)
class EhrRead:
    """One optional resource from the EHR: the resource, or why the EHR could not give it."""

    resource: dict[str, Any] | None = None
    failure: str | None = None  # a technical failure (None: read, or simply not there)


class EhrData:
    """Prefetched data, and reads/searches against the EHR when something was not prefetched."""

    def __init__(self, request: HookRequest, client: httpx.AsyncClient) -> None:
        self._request = request
        self._client = client
        self._deadline: float | None = None
        self._failures: dict[str, str] = {}

    def failure(self, key: str) -> str | None:
        """Why optional data under `key` could not be had from the EHR (None: it could, or it
        was not asked for)."""
        return self._failures.get(key)

    def _timeout(self) -> float:
        """Seconds the next query may take: its own limit, within what is left of the budget."""
        now = asyncio.get_running_loop().time()
        if self._deadline is None:
            self._deadline = now + EHR_BUDGET_SECONDS
        return min(EHR_TIMEOUT_SECONDS, self._deadline - now)

    @property
    def can_query(self) -> bool:
        """Whether a read missing from prefetch goes to the EHR (else it fails at once)."""
        return self._request.fhir_server is not None

    def prefetched(self, key: str) -> tuple[bool, list[dict[str, Any]]]:
        """(was the key provided, its resources)."""
        if key not in self._request.prefetch:
            return False, []
        return True, bundle_resources(self._request.prefetch[key])

    async def get(self, key: str, query: str | None) -> list[dict[str, Any]]:
        """The prefetch `key`, else the result of `query` (`Type/id`, `Type?params`) on the EHR."""
        provided, resources = self.prefetched(key)
        if provided:
            return resources
        if query is None:
            return []
        return await self.query(key, query)

    async def query(self, key: str, query: str) -> list[dict[str, Any]]:
        request = self._request
        if not request.fhir_server:
            raise EhrDataUnavailableError(key, "not prefetched and no fhirServer was given")
        headers = {"Accept": "application/fhir+json"}
        if request.fhir_authorization:
            headers["Authorization"] = f"Bearer {request.fhir_authorization.access_token}"
        url = f"{request.fhir_server}/{query.lstrip('/')}"
        timeout = self._timeout()
        if timeout <= 0:
            raise EhrDataUnavailableError(
                key, f"no time was left of the {EHR_BUDGET_SECONDS:g} s allowed for EHR queries"
            )
        try:
            response = await self._client.get(url, headers=headers, timeout=timeout)
        except (TimeoutError, httpx.HTTPError) as exc:
            log.warning("EHR query %s failed: %s", url, exc)
            why = (
                f"no answer within {timeout:.3g} s"
                if isinstance(exc, (TimeoutError, httpx.TimeoutException))
                else f"the query failed ({type(exc).__name__})"
            )
            raise EhrDataUnavailableError(key, why) from None
        if response.status_code == 404:
            return []
        if response.status_code != 200:
            raise EhrDataUnavailableError(key, f"it answered HTTP {response.status_code}")
        try:
            return bundle_resources(response.json())
        except ValueError:
            raise EhrDataUnavailableError(key, "it answered something that is not JSON") from None

    async def get_optional(self, key: str, query: str | None) -> list[dict[str, Any]]:
        """Like `get`, but data the EHR cannot give is simply absent (it is only nice to have)."""
        try:
            return await self.get(key, query)
        except EhrDataUnavailableError as exc:
            log.info("optional EHR data missing: %s", exc)
            if self.can_query:
                self._failures[key] = exc.why
            return []


async def gather_reads(ehr: EhrData, *reads: Coroutine[Any, Any, Read]) -> list[Read]:
    """The results of `reads` (coroutines reading through `ehr`), in order; the first error is
    raised. Concurrent when they may query the EHR (found-24: in parallel, within the time
    budget), else awaited in turn: none of them can wait, so tasks would only cost time."""
    if ehr.can_query:
        return list(await asyncio.gather(*reads))
    results: list[Read] = []
    try:
        for read in reads:
            results.append(await read)
    finally:
        for unstarted in reads[len(results) + 1 :]:
            unstarted.close()
    return results
