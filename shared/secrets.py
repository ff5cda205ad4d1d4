"""The Labelbox API key: held so that it cannot be printed, fetched once per warm instance.

``LABELBOX_API_KEY`` holds the key itself (local use). Otherwise ``LABELBOX_API_KEY_SECRET`` names where the key
is kept, and its form picks the store:

- ``arn:aws:secretsmanager:...`` → AWS Secrets Manager: the secret string, or its ``api_key`` field when the
  string is a JSON object (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html)
- ``arn:aws:ssm:...:parameter/NAME`` or ``ssm:NAME`` → AWS SSM Parameter Store, decrypted
  (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParameter.html)
- ``projects/P/secrets/S[/versions/V]`` → Google Secret Manager over REST, with the function's service-account
  token from the metadata server (https://cloud.google.com/secret-manager/docs/reference/rest/v1/projects.secrets.versions/access,
  https://cloud.google.com/compute/docs/access/authenticate-workloads#applications)
- ``https://VAULT.vault.azure.net/secrets/NAME[/VERSION]`` → Azure Key Vault over REST, with the function's
  managed-identity token (https://learn.microsoft.com/rest/api/keyvault/secrets/get-secret/get-secret,
  https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference)

boto3 is imported only for the AWS stores. The GCP and Azure endpoints come from the platform's own variables
(``GCE_METADATA_HOST``; ``IDENTITY_ENDPOINT``, ``IDENTITY_HEADER``) or from ``Stores`` (tests point them at local
servers). No message, log line or repr from this module carries the key.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from shared.deadline import Deadline


class Secret:
    """A string that never shows itself in a repr, a str(), a log line or an exception message."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('****')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled")


class SecretError(Exception):
    """The key could not be had; the message names the store and what to fix, never the value. A human (or the
    store coming back) fixes it, so whatever needed the key is worth retrying later."""


@dataclass(frozen=True, slots=True)
class Stores:
    """Where the GCP and Azure stores answer. Defaults follow the platforms; tests point them at local servers."""

    gcp_metadata: str = field(
        default_factory=lambda: "http://" + os.environ.get("GCE_METADATA_HOST", "metadata.google.internal")
    )
    gcp_secret_manager: str = "https://secretmanager.googleapis.com"  # noqa: S105 (an endpoint, not a secret)
    azure_identity_endpoint: str | None = field(default_factory=lambda: os.environ.get("IDENTITY_ENDPOINT"))
    azure_identity_header: str | None = field(default_factory=lambda: os.environ.get("IDENTITY_HEADER"))
    azure_client_id: str | None = field(default_factory=lambda: os.environ.get("AZURE_CLIENT_ID"))


_cache: dict[str, Secret] = {}
_lock = threading.Lock()


def api_key(direct: Secret | None, reference: str | None, deadline: Deadline, stores: Stores | None = None) -> Secret:
    """The key: ``direct`` when given (LABELBOX_API_KEY), else fetched from ``reference`` once per warm instance."""
    if direct is not None:
        return direct
    if not reference:
        raise SecretError(
            "no Labelbox API key: set LABELBOX_API_KEY_SECRET to where it is stored (or LABELBOX_API_KEY locally)"
        )
    with _lock:
        cached = _cache.get(reference)
    if cached is not None:
        return cached
    secret = fetch(reference, deadline, stores or Stores())
    with _lock:
        _cache[reference] = secret
    return secret


def forget(reference: str | None) -> None:
    """Drop a cached key (Labelbox refused it: it may have been rotated), so the next call fetches it again."""
    if reference:
        with _lock:
            _cache.pop(reference, None)


def fetch(reference: str, deadline: Deadline, stores: Stores) -> Secret:
    """Read the key from the store ``reference`` names (no cache)."""
    for matches, reader in _READERS:
        if matches(reference):
            value = reader(reference, deadline, stores).strip()
            if not value:
                raise SecretError(f"{reference} holds an empty value: store the Labelbox API key there")
            return Secret(value)
    raise SecretError(
        f"LABELBOX_API_KEY_SECRET={reference!r} is not a secret reference: use a Secrets Manager ARN, "
        "an SSM parameter (arn:aws:ssm:...:parameter/NAME or ssm:NAME), projects/P/secrets/S or a Key Vault "
        "secret URL (https://VAULT.vault.azure.net/secrets/NAME)"
    )


def _key_from_text(text: str, where: str) -> str:
    """The secret text itself, or its ``api_key`` field when it is a JSON object."""
    if text.lstrip().startswith("{"):
        try:
            document = json.loads(text)
        except ValueError:
            raise SecretError(
                f"{where} looks like JSON but does not parse: store the key or {{'api_key': KEY}}"
            ) from None
        key = document.get("api_key") if isinstance(document, dict) else None
        if not isinstance(key, str):
            raise SecretError(f"{where} is a JSON object without a string 'api_key' field: add one")
        return key
    return text


# AWS (boto3, imported only here) -------------------------------------------------------------------------------

_AWS_HINTS: Mapping[str, str] = {
    "ResourceNotFoundException": "no such secret: check LABELBOX_API_KEY_SECRET",
    "ParameterNotFound": "no such parameter: check LABELBOX_API_KEY_SECRET",
    "ParameterVersionNotFound": "no such parameter version: check LABELBOX_API_KEY_SECRET",
    "AccessDeniedException": "the function's role may not read it: allow {action} on it (and kms:Decrypt on its key)",
    "DecryptionFailure": "its KMS key cannot decrypt it: allow kms:Decrypt to the function's role",
    "InvalidKeyId": "its KMS key is unusable: check the key and allow kms:Decrypt to the function's role",
}


def _aws_client(service: str, region: str | None, deadline: Deadline) -> Any:
    import boto3  # type: ignore[import-untyped, unused-ignore]
    from botocore.config import Config  # type: ignore[import-untyped, unused-ignore]

    attempts = 3
    per_attempt = max(0.1, deadline.remaining() / attempts)
    config = Config(
        connect_timeout=per_attempt,
        read_timeout=per_attempt,
        retries={"total_max_attempts": attempts, "mode": "standard"},
    )
    return boto3.client(service, region_name=region or None, config=config)


def _aws_call(reference: str, action: str, call: Callable[[], str]) -> str:
    from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped, unused-ignore]

    try:
        return call()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        hint = _AWS_HINTS.get(code, "see the function's logs and the store's permissions").format(action=action)
        raise SecretError(f"could not read the Labelbox API key from {reference} ({code}): {hint}") from None
    except BotoCoreError as exc:
        raise SecretError(f"could not reach AWS to read {reference}: {exc.__class__.__name__}; will retry") from None


def _read_secrets_manager(reference: str, deadline: Deadline, stores: Stores) -> str:
    region = reference.split(":")[3]
    client = _aws_client("secretsmanager", region, deadline)

    def call() -> str:
        answer = client.get_secret_value(SecretId=reference)
        if "SecretString" not in answer:
            raise SecretError(f"{reference} holds binary data: store the key as a secret string")
        return str(answer["SecretString"])

    return _key_from_text(_aws_call(reference, "secretsmanager:GetSecretValue", call), reference)


def _read_ssm(reference: str, deadline: Deadline, stores: Stores) -> str:
    region = reference.split(":")[3] if reference.startswith("arn:") else None
    name = reference if reference.startswith("arn:") else reference.removeprefix("ssm:")
    client = _aws_client("ssm", region, deadline)

    def call() -> str:
        return str(client.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"])

    return _key_from_text(_aws_call(reference, "ssm:GetParameter", call), reference)


# GCP and Azure (REST through the deadline-aware transport) -------------------------------------------------------


def _get_json(
    url: str, headers: Mapping[str, str], deadline: Deadline, reference: str, hints: Mapping[int, str]
) -> Any:
    from shared.transport import TransportError, request

    try:
        answer = request("GET", url, deadline, headers=headers, timeout=10.0)
    except TransportError as exc:
        raise SecretError(f"could not read the Labelbox API key from {reference}: {exc}") from None
    except OSError as exc:  # e.g. the metadata host does not resolve: not running on that cloud
        raise SecretError(f"could not reach {_origin(url)} for {reference}: {exc.__class__.__name__}") from None
    if answer.status != 200:
        hint = hints.get(answer.status, "see the function's logs")
        raise SecretError(f"could not read the Labelbox API key from {reference} (HTTP {answer.status}): {hint}")
    try:
        return answer.json()
    except ValueError:  # never quote the body: it may hold the key
        raise SecretError(f"{_origin(url)} answered {reference} with something other than JSON") from None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _read_gcp(reference: str, deadline: Deadline, stores: Stores) -> str:
    name = reference if "/versions/" in reference else f"{reference}/versions/latest"
    try:
        token = _get_json(
            f"{stores.gcp_metadata}/computeMetadata/v1/instance/service-accounts/default/token",
            {"Metadata-Flavor": "Google"},
            deadline,
            reference,
            {404: "the function has no service account: attach one that can access the secret"},
        ).get("access_token")
    except SecretError as exc:
        raise SecretError(
            f"no token from the GCP metadata server at {stores.gcp_metadata} (not on GCP? set LABELBOX_API_KEY "
            f"for local use): {exc}"
        ) from None
    if not isinstance(token, str):
        raise SecretError("the GCP metadata server gave no access token: attach a service account to the function")
    answer = _get_json(
        f"{stores.gcp_secret_manager}/v1/{quote(name, safe='/')}:access",
        {"Authorization": f"Bearer {token}"},
        deadline,
        reference,
        {
            403: "grant the function's service account roles/secretmanager.secretAccessor on the secret",
            404: "no such secret or version: check LABELBOX_API_KEY_SECRET",
            401: "the service-account token was refused: check the function's service account",
        },
    )
    try:
        data = base64.b64decode(answer["payload"]["data"]).decode("utf-8")
    except (KeyError, TypeError, ValueError):
        raise SecretError(f"{reference}: Secret Manager's answer has no readable payload.data") from None
    return _key_from_text(data, reference)


def _read_key_vault(reference: str, deadline: Deadline, stores: Stores) -> str:
    if not (stores.azure_identity_endpoint and stores.azure_identity_header):
        raise SecretError(
            f"no managed identity to read {reference}: enable the function app's managed identity "
            "(IDENTITY_ENDPOINT and IDENTITY_HEADER are unset)"
        )
    host = urlsplit(reference).hostname or ""
    resource = "https://" + host.split(".", 1)[1] if ".vault." in host else "https://vault.azure.net"
    params = {"resource": resource, "api-version": "2019-08-01"}
    if stores.azure_client_id:
        params["client_id"] = stores.azure_client_id
    token = _get_json(
        f"{stores.azure_identity_endpoint}?{urlencode(params)}",
        {"X-IDENTITY-HEADER": stores.azure_identity_header},
        deadline,
        reference,
        {400: "the managed identity is not set up: enable it on the function app"},
    ).get("access_token")
    if not isinstance(token, str):
        raise SecretError("the managed-identity endpoint gave no access token: check the function app's identity")
    answer = _get_json(
        f"{reference.rstrip('/')}?api-version=7.4",
        {"Authorization": f"Bearer {token}"},
        deadline,
        reference,
        {
            403: "give the function app's identity the 'Key Vault Secrets User' role (or a get-secret access policy)",
            404: "no such secret or version: check LABELBOX_API_KEY_SECRET",
            401: "the managed-identity token was refused: check the identity and the vault's tenant",
        },
    )
    value = answer.get("value") if isinstance(answer, dict) else None
    if not isinstance(value, str):
        raise SecretError(f"{reference}: Key Vault's answer has no string value")
    return _key_from_text(value, reference)


def _arn_service(reference: str) -> str:
    """The service of an ARN (``arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE``), '' for anything else."""
    parts = reference.split(":", 5)
    return parts[2] if len(parts) == 6 and parts[0] == "arn" else ""


def _is_key_vault(reference: str) -> bool:
    parts = urlsplit(reference)
    return parts.scheme in ("https", "http") and parts.path.startswith("/secrets/")


# The store a reference names: first match wins.
_READERS: tuple[tuple[Callable[[str], bool], Callable[[str, Deadline, Stores], str]], ...] = (
    (lambda r: _arn_service(r) == "secretsmanager", _read_secrets_manager),
    (lambda r: _arn_service(r) == "ssm" or r.startswith("ssm:"), _read_ssm),
    (lambda r: r.startswith("projects/") and "/secrets/" in r, _read_gcp),
    (_is_key_vault, _read_key_vault),
)
