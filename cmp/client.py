"""A small client for the marketing sender and the analytics pipeline, on the standard library only.

    from cmp.client import ApiError, Client

    cmp = Client("https://consent.example.com", api_key)
    recipients = cmp.allowed_recipients("shop", addresses)          # who may get this campaign, in order
    headers = cmp.unsubscribe_headers("shop", "ada@example.org")    # List-Unsubscribe, List-Unsubscribe-Post

Lookups need a key with the `consent:read` scope, `subscribe` and `unsubscribe_headers` one with `email:write`
(or a key with both, or `admin`). Anything the service refuses raises `ApiError`; so does a service that cannot
be reached (status 0). Send nothing when a lookup fails: no answer is never consent.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from urllib.parse import urlencode

# The service answers at most this many subjects per bulk lookup.
MAX_SUBJECTS = 10_000
USER_AGENT = "cmp-client/1"


class ApiError(Exception):
    """An error answer, from its body {"error": {"code", "message", "details"}}; status 0 when none came."""

    def __init__(self, status: int, code: str, message: str, details: dict | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}


class Client:
    """Calls the service at `base_url` with one API key; each call is one HTTP request (several for long lists)."""

    def __init__(self, base_url: str, api_key: str, timeout: float = 10.0, *, batch_size: int = MAX_SUBJECTS):
        if not 1 <= batch_size <= MAX_SUBJECTS:
            raise ValueError(f"batch_size must be 1 to {MAX_SUBJECTS}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.batch_size = batch_size
        self._api_key = api_key

    def __repr__(self) -> str:
        return f"Client({self.base_url!r})"  # never the key

    # --- lookups (consent:read) ---------------------------------------------------------------------------------

    def lookup(self, site: str, subject: str, purpose: str) -> dict:
        """One answer: {"allowed", "reason", "decided_at", "event_id", "notice_version", "expires_at", ...}.

        `subject` is `visitor:<signed id>`, `user:<account id>` or `email:<address>`.
        """
        return self._request("GET", "/api/v1/consents/lookup", {"site": site, "subject": subject, "purpose": purpose})

    def lookup_many(self, site: str, subjects: Iterable[str], purposes: str | Sequence[str]) -> list[dict]:
        """For each subject, in order, {"subject", "allowed", "purposes": {purpose: answer}}.

        `allowed` is true only when every purpose is; lists longer than 10,000 go in several calls.
        """
        subjects = list(subjects)
        purposes = [purposes] if isinstance(purposes, str) else list(purposes)
        results: list[dict] = []
        for start in range(0, len(subjects), self.batch_size):
            results.extend(self._bulk(site, subjects[start : start + self.batch_size], purposes))
        return results

    def allowed_recipients(self, site: str, emails: Iterable[str], purpose: str = "marketing_email") -> list[str]:
        """The addresses that may receive mail for `purpose`, in the order given.

        An address the service cannot read is left out (never allowed) instead of failing the whole list.
        """
        emails = list(emails)
        allowed: list[str] = []
        for start in range(0, len(emails), self.batch_size):
            allowed.extend(self._allowed(site, emails[start : start + self.batch_size], purpose))
        return allowed

    def _bulk(self, site: str, subjects: list[str], purposes: list[str]) -> list[dict]:
        body = {"site": site, "subjects": subjects, "purposes": purposes}
        return self._request("POST", "/api/v1/consents/lookup", body=body)["results"]

    def _allowed(self, site: str, emails: list[str], purpose: str) -> list[str]:
        positions = list(range(len(emails)))
        while positions:
            try:
                results = self._bulk(site, [f"email:{emails[p]}" for p in positions], [purpose])
            except ApiError as error:
                refused = _refused_positions(error) & set(range(len(positions)))
                if not refused:
                    raise
                positions = [p for index, p in enumerate(positions) if index not in refused]
                continue
            return [emails[p] for p, result in zip(positions, results, strict=True) if result["allowed"]]
        return []

    # --- marketing email (email:write) --------------------------------------------------------------------------

    def subscribe(self, site: str, email: str, locale: str | None = None, **evidence) -> dict:
        """Start a double opt-in; mail the answer's "confirmation_url" to the address (it is null when already
        confirmed). `evidence` may add notice_version, page_url, ip, user_agent, country and gpc.
        """
        body = {"site": site, "email": email, **({"locale": locale} if locale else {}), **evidence}
        return self._request("POST", "/api/v1/email/subscriptions", body=body)

    def unsubscribe_headers(self, site: str, email: str) -> dict[str, str]:
        """The List-Unsubscribe and List-Unsubscribe-Post header values (RFC 2369, RFC 8058) for one recipient."""
        answer = self._request("GET", "/api/v1/email/headers", {"site": site, "email": email})
        headers = answer.get("headers", answer)
        return {name: value for name, value in headers.items() if name.lower().startswith("list-unsubscribe")}

    # --- transport ----------------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, query: dict | None = None, body: dict | None = None) -> dict:
        url = self.base_url + path + (f"?{urlencode(query)}" if query else "")
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            try:
                answer = error.read() if error.fp else b""
            finally:
                error.close()
            raise _api_error(error.code, answer, error.reason) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            reason = getattr(error, "reason", error)
            raise ApiError(0, "unreachable", f"{self.base_url} did not answer: {reason}") from None


def _api_error(status: int, body: bytes, reason: str) -> ApiError:
    try:
        error = json.loads(body)["error"]
        return ApiError(status, error["code"], error.get("message", ""), error.get("details") or {})
    except (ValueError, KeyError, TypeError):
        # Not the service's error shape: a proxy or load balancer answered.
        return ApiError(status, f"http_{status}", str(reason or body[:200].decode(errors="replace")))


def _refused_positions(error: ApiError) -> set[int]:
    """Positions of the subjects a 422 refused, when only subjects were refused; empty otherwise."""
    if error.status != 422:
        return set()
    if error.code == "invalid_subject":
        named = error.details.get("subjects", {})
    elif error.code == "invalid" and set(error.details.get("fields", {})) == {"subjects"}:
        named = error.details["fields"]["subjects"]
    else:
        return set()
    if not isinstance(named, dict) or not all(str(key).isdigit() for key in named):
        return set()
    return {int(key) for key in named}
