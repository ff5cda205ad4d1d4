"""IAM-delegated URIs: the address Labelbox fetches an object by, through the customer's integration.

- S3: virtual-hosted ``https://BUCKET.s3.REGION.amazonaws.com/KEY``; Labelbox requires it and rejects ``s3://``
  and path style (https://docs.labelbox.com/reference/import-image-data). The key is percent-encoded per
  RFC 3986 with ``/`` kept; ``.`` and ``..`` segments are encoded too, so no client folds them away.
- GCS: ``gs://BUCKET/OBJECT``, the only form Labelbox accepts for GCS
  (https://docs.labelbox.com/docs/using-google-cloud-storage); the name goes in as is, as in Labelbox's own
  labelbox-gcs-stream function.
- Azure: ``https://ACCOUNT.blob.core.windows.net/CONTAINER/BLOB``, percent-encoded (the host suffix follows the
  event for sovereign clouds).

``parse_uri`` inverts ``object_uri`` exactly, for any key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import quote, unquote

from shared.events.model import Cloud

DEFAULT_AZURE_ENDPOINT = "blob.core.windows.net"
# Region prefix → S3 domain; the first match wins, the last entry is the default.
S3_DOMAINS: tuple[tuple[str, str], ...] = (("cn-", "amazonaws.com.cn"), ("", "amazonaws.com"))

# Characters Labelbox cannot serve in a URL (RFC 2396 §2.4.3 delimiters); objects whose keys hold them are
# skipped unless configured otherwise (https://docs.labelbox.com/reference/data-row).
UNSERVABLE_CHARACTERS = frozenset("#<>|")


class ObjectLocation(NamedTuple):
    """Where an object lives: enough to build its URI and its global key (immutable, built per object)."""

    cloud: Cloud
    bucket: str
    key: str
    account: str | None = None  # Azure storage account
    region: str | None = None  # S3 bucket region
    endpoint: str | None = None  # Azure blob host suffix


# What RFC 3986 leaves unreserved, plus '/': a key made only of these goes into the URI as it is (the common case).
_NEEDS_ESCAPE = re.compile(r"[^A-Za-z0-9/_.~-]")
# Percent-encoding of the other ASCII characters: one str.translate call does for an ASCII key what quote() does
# byte by byte in Python (same result; quote still handles non-ASCII keys).
_ASCII_ESCAPES = {c: f"%{c:02X}" for c in range(128) if _NEEDS_ESCAPE.match(chr(c))}


def _encode_path(key: str) -> str:
    if not _NEEDS_ESCAPE.search(key):
        path = key
    else:
        path = key.translate(_ASCII_ESCAPES) if key.isascii() else quote(key, safe="/")
    if not path.startswith(".") and "/." not in path:  # no dot segment possible: the common case
        return path
    return "/".join("%2E" * len(s) if s in {".", ".."} else s for s in path.split("/"))


@lru_cache(maxsize=64)
def _s3_domain(region: str) -> str:
    for prefix, domain in S3_DOMAINS:
        if region.startswith(prefix):
            return domain
    raise AssertionError("S3_DOMAINS ends with a catch-all entry")


def _s3_uri(loc: ObjectLocation) -> str:
    if not loc.region:
        raise ValueError(f"the S3 URI of {loc.bucket}/{loc.key} needs the bucket's region")
    return f"https://{loc.bucket}.s3.{loc.region}.{_s3_domain(loc.region)}/{_encode_path(loc.key)}"


def _gcs_uri(loc: ObjectLocation) -> str:
    return f"gs://{loc.bucket}/{loc.key}"


def _azure_uri(loc: ObjectLocation) -> str:
    if not loc.account:
        raise ValueError(f"the Azure URI of {loc.bucket}/{loc.key} needs the storage account")
    endpoint = loc.endpoint or DEFAULT_AZURE_ENDPOINT
    return f"https://{loc.account}.{endpoint}/{loc.bucket}/{_encode_path(loc.key)}"


URI_BUILDERS: Mapping[Cloud, Callable[[ObjectLocation], str]] = {
    Cloud.AWS: _s3_uri,
    Cloud.GCP: _gcs_uri,
    Cloud.AZURE: _azure_uri,
}

_S3_HOST = re.compile(r"(?P<bucket>.+?)\.s3\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?")
_AZURE_HOST = re.compile(r"(?P<account>[a-z0-9]+)\.(?P<endpoint>blob\..+)")


def object_uri(location: ObjectLocation) -> str:
    """The IAM-delegated URI Labelbox opens for this object."""
    return URI_BUILDERS[location.cloud](location)


def parse_uri(uri: str) -> ObjectLocation:
    """The location a URI built by ``object_uri`` names; ValueError for any other form."""
    if uri.startswith("gs://"):
        bucket, sep, key = uri[len("gs://") :].partition("/")
        if not bucket or not sep:
            raise ValueError(f"not a gs://BUCKET/OBJECT URI: {uri!r}")
        return ObjectLocation(Cloud.GCP, bucket, key)
    if not uri.startswith("https://"):
        raise ValueError(f"not an IAM-delegated URI (https:// or gs://): {uri!r}")
    host, sep, path = uri[len("https://") :].partition("/")
    if not sep:
        raise ValueError(f"URI has no object path: {uri!r}")
    if match := _S3_HOST.fullmatch(host):
        return ObjectLocation(Cloud.AWS, match["bucket"], unquote(path, errors="strict"), region=match["region"])
    if match := _AZURE_HOST.fullmatch(host):
        container, sep, blob = path.partition("/")
        if not sep:
            raise ValueError(f"Azure URI has no blob path: {uri!r}")
        return ObjectLocation(
            Cloud.AZURE,
            unquote(container),
            unquote(blob, errors="strict"),
            account=match["account"],
            endpoint=match["endpoint"],
        )
    raise ValueError(f"not an S3 virtual-hosted or Azure blob URI: {uri!r}")
