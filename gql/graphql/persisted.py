"""Persisted documents: Apollo's automatic persisted queries (APQ) and trusted documents.

APQ: a request may send `extensions.persistedQuery = {version: 1, sha256Hash}` without its
`query`; a hash the gateway has not seen is answered `PERSISTED_QUERY_NOT_FOUND` and the client
sends the text once with the hash, which is checked and remembered (bounded, per process).

Trusted documents: a manifest of `sha256 → document` (Apollo's persisted-query manifest or
Relay's `{id: text}` file), read at start-up; a request names one with `documentId` (also
`sha256:<hash>`), or with the APQ hash. With `GRAPHQL_TRUSTED_DOCUMENTS_ONLY` nothing else is
executed: not APQ, not a full text that is not in the manifest.
"""

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cachetools import LRUCache

from gql.graphql.over_http import RequestRefused

NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
NOT_IN_LIST = "PERSISTED_QUERY_NOT_IN_LIST"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class ManifestError(ValueError):
    """The trusted-documents manifest cannot be used; the message says what to fix."""


def load_manifest(path: Path) -> dict[str, str]:
    """`sha256 → document` from an Apollo or Relay manifest; every id must be the text's hash."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ManifestError(f"Cannot read the trusted documents at {path}: {error}") from error
    entries: list[tuple[str, object]]
    if isinstance(raw, dict) and raw.get("format") == "apollo-persisted-query-manifest":
        operations = raw.get("operations")
        if not isinstance(operations, list):
            raise ManifestError(f"{path}: an Apollo manifest needs an `operations` list")
        entries = [(str(op.get("id")), op.get("body")) for op in operations if isinstance(op, dict)]
    elif isinstance(raw, dict):
        entries = list(raw.items())
    else:
        raise ManifestError(
            f"{path}: expected an Apollo persisted-query manifest or a Relay "
            '`{"<sha256>": "<document>"}` object'
        )
    documents: dict[str, str] = {}
    for key, body in entries:
        if not isinstance(body, str):
            raise ManifestError(f"{path}: the document of {key} is not a string")
        digest = key.removeprefix("sha256:").lower()
        if digest != sha256(body):
            raise ManifestError(
                f"{path}: {key} is not the SHA-256 of its document; generate the manifest "
                "with SHA-256 ids (Relay: persistConfig.algorithm = SHA256)"
            )
        documents[digest] = body
    return documents


class PersistedDocuments:
    """Turns a request's persisted-document reference into its `query` text."""

    def __init__(self, trusted: Mapping[str, str], *, apq_size: int, trusted_only: bool) -> None:
        self.trusted = dict(trusted)
        self._trusted_texts = frozenset(self.trusted.values())
        self.trusted_only = trusted_only
        self._apq: LRUCache[str, str] | None = (
            LRUCache(maxsize=apq_size) if apq_size > 0 and not trusted_only else None
        )

    def resolve(self, data: dict[str, Any]) -> dict[str, Any]:
        """The request with its `query` filled in, or `RequestRefused` saying why not."""
        document_id = data.get("documentId")
        extensions = data.get("extensions")
        persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
        query = data.get("query")
        if document_id is not None:
            return {**data, "query": self._trusted(document_id)}
        if persisted is not None:
            return {**data, "query": self._automatic(persisted, query)}
        if self.trusted_only and query is not None and query not in self._trusted_texts:
            raise RequestRefused(
                400,
                "Only trusted documents are accepted here: send the `documentId` of a "
                "document in the manifest.",
                NOT_IN_LIST,
            )
        return data

    def _trusted(self, document_id: object) -> str:
        if not isinstance(document_id, str):
            raise RequestRefused(400, "`documentId` must be a string such as sha256:<hash>.")
        text = self.trusted.get(document_id.removeprefix("sha256:").lower())
        if text is None:
            raise RequestRefused(400, f"No trusted document has the id {document_id}.", NOT_FOUND)
        return text

    def _automatic(self, persisted: object, query: object) -> str:
        if not isinstance(persisted, dict) or persisted.get("version") != 1:
            raise RequestRefused(
                400, "Unsupported persistedQuery: send {version: 1, sha256Hash}.", NOT_SUPPORTED
            )
        digest = persisted.get("sha256Hash")
        if not isinstance(digest, str):
            raise RequestRefused(400, "persistedQuery.sha256Hash must be a string.")
        digest = digest.lower()
        if isinstance(query, str):
            if sha256(query) != digest:
                raise RequestRefused(
                    400, "persistedQuery.sha256Hash is not the SHA-256 of the query."
                )
            if digest in self.trusted:
                return query
            if self._apq is None:
                raise self._apq_off()
            self._apq[digest] = query
            return query
        text = self.trusted.get(digest)
        if text is None and self._apq is not None:
            text = self._apq.get(digest)
        if text is None:
            if self._apq is None:
                raise self._apq_off()
            # Apollo's clients retry with the full text on exactly this answer.
            raise RequestRefused(200, "PersistedQueryNotFound", NOT_FOUND)
        return text

    def _apq_off(self) -> RequestRefused:
        if self.trusted_only:
            return RequestRefused(
                400,
                "Only trusted documents are accepted here: this hash is not in the manifest.",
                NOT_IN_LIST,
            )
        return RequestRefused(200, "PersistedQueryNotSupported", NOT_SUPPORTED)
