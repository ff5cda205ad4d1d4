"""What to backfill: a bucket URI read into cloud, bucket, prefix (and, for Azure, account and host suffix).

- ``s3://BUCKET/PREFIX`` (the AWS CLI's form): the prefix is taken literally, as S3 keys are.
- ``gs://BUCKET/PREFIX`` (gcloud's form): literal too.
- ``https://ACCOUNT.blob.core.windows.net/CONTAINER/PREFIX`` (the blob URL; sovereign clouds' suffixes too):
  the path is percent-decoded, as in any URL. The emulator's path style
  ``http://127.0.0.1:10000/ACCOUNT/CONTAINER/PREFIX`` is accepted too.

Name rules, to say early what is wrong:
S3 https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html ,
GCS https://cloud.google.com/storage/docs/buckets#naming , Azure
https://learn.microsoft.com/rest/api/storageservices/naming-and-referencing-containers--blobs--and-metadata
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from shared.events.model import Cloud

FORMS = "s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or https://ACCOUNT.blob.core.windows.net/CONTAINER/PREFIX"

SERVICE_NAMES: Mapping[Cloud, str] = {Cloud.AWS: "S3", Cloud.GCP: "Cloud Storage", Cloud.AZURE: "Azure"}
# cloud → (pattern, what the name may hold)
BUCKET_NAMES: Mapping[Cloud, tuple[re.Pattern[str], str]] = {
    Cloud.AWS: (re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"), "3-63 lower-case letters, digits, '.' and '-'"),
    Cloud.GCP: (re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]"), "3-222 lower-case letters, digits, '.', '_', '-'"),
    Cloud.AZURE: (re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}"), "3-63 lower-case letters, digits and '-'"),
}
AZURE_ACCOUNT = re.compile(r"[a-z0-9]{3,24}")
_AZURE_HOST = re.compile(r"(?P<account>[^.]+)\.(?P<suffix>blob\..+)")


class TargetError(ValueError):
    """The URI cannot name a bucket; the message says what is wrong and which form to use."""


@dataclass(frozen=True, slots=True)
class Target:
    cloud: Cloud
    bucket: str  # the S3/GCS bucket or the Azure container
    prefix: str = ""
    account: str | None = None  # Azure storage account
    endpoint: str | None = None  # Azure blob host suffix (blob.core.windows.net), None for the emulator's path style
    service_url: str | None = None  # Azure path-style service URL (emulator), when the URI gave one

    @property
    def uri(self) -> str:
        """The canonical URI (what the checkpoint records)."""
        if self.cloud is Cloud.AWS:
            return f"s3://{self.bucket}/{self.prefix}"
        if self.cloud is Cloud.GCP:
            return f"gs://{self.bucket}/{self.prefix}"
        if self.service_url:
            return f"{self.service_url}/{self.bucket}/{self.prefix}"
        return f"https://{self.account}.{self.endpoint}/{self.bucket}/{self.prefix}"


def parse_target(uri: str) -> Target:
    scheme, sep, rest = uri.partition("://")
    if not sep:
        raise TargetError(f"{uri!r} is not a bucket URI: use {FORMS}")
    scheme = scheme.lower()
    if scheme in {"s3", "gs"}:
        cloud = Cloud.AWS if scheme == "s3" else Cloud.GCP
        bucket, _, prefix = rest.partition("/")
        return Target(cloud, _bucket(cloud, bucket, uri), prefix)
    if scheme in {"https", "http"}:
        return _azure(uri)
    raise TargetError(f"{uri!r}: unknown scheme '{scheme}://': use {FORMS}")


def _bucket(cloud: Cloud, name: str, uri: str) -> str:
    what = "container" if cloud is Cloud.AZURE else "bucket"
    if not name:
        raise TargetError(f"{uri!r} names no {what}: use {FORMS}")
    pattern, rule = BUCKET_NAMES[cloud]
    if not pattern.fullmatch(name):
        raise TargetError(f"{uri!r}: {name!r} is not a valid {SERVICE_NAMES[cloud]} {what} name ({rule})")
    return name


def _azure(uri: str) -> Target:
    parts = urlsplit(uri)
    host = (parts.hostname or "").lower()
    path = parts.path.lstrip("/")
    if match := _AZURE_HOST.fullmatch(host):
        account, endpoint, service_url = match["account"], match["suffix"], None
    elif host in {"127.0.0.1", "localhost"} or host.replace(".", "").isdigit():
        account, _, path = path.partition("/")  # path style: http://HOST:PORT/ACCOUNT/CONTAINER/PREFIX
        endpoint, service_url = None, f"{parts.scheme}://{parts.netloc}/{account}"
    else:
        raise TargetError(f"{uri!r} is not an Azure blob URL (ACCOUNT.blob.core.windows.net): use {FORMS}")
    if not AZURE_ACCOUNT.fullmatch(account):
        raise TargetError(f"{uri!r}: {account!r} is not a storage account name (3-24 lower-case letters and digits)")
    container, _, prefix = path.partition("/")
    return Target(
        Cloud.AZURE,
        _bucket(Cloud.AZURE, unquote(container), uri),
        unquote(prefix, errors="strict"),
        account=account,
        endpoint=endpoint,
        service_url=service_url,
    )
