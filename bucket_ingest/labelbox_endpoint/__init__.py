"""A Labelbox-compatible GraphQL endpoint for local runs and tests (dev only, never deployed).

It answers the subset of Labelbox's API that the official SDK and bucket-ingest's client use, with Labelbox's
data-row semantics, backed by SQLite; faults (throttling, 5xx, slow answers, dropped connections, tasks that stay
IN_PROGRESS, refused rows) can be set at start and changed while it runs.
"""

from bucket_ingest.labelbox_endpoint.server import DEFAULT_API_KEY, Faults, LabelboxEndpoint

__all__ = ["DEFAULT_API_KEY", "Faults", "LabelboxEndpoint"]
