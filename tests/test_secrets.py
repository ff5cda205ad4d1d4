"""The API key: hidden in every repr, fetched once per warm instance from the store LABELBOX_API_KEY_SECRET names.

AWS stores run on moto's server; GCP Secret Manager (with the metadata server's token) and Azure Key Vault (with
the managed-identity endpoint) are local HTTP servers answering as the REST references describe.
"""

from __future__ import annotations

import base64
import json
import logging
import pickle
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from bucket_ingest.emulators import Moto
from shared import secrets
from shared.deadline import Deadline
from shared.registries.base import RowStatus
from shared.registries.labelbox import LabelboxRegistry
from shared.secrets import Secret, SecretError, Stores, api_key, fetch, forget
from shared.settings import Settings
from tests.support.labelbox import API_KEY, payload, running_endpoint

KEY = "lb-key-0123456789abcdef"


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    secrets._cache.clear()
    yield
    secrets._cache.clear()


@pytest.fixture(scope="module")
def moto() -> Iterator[Moto]:
    with Moto() as server:
        yield server


@pytest.fixture
def aws(moto: Moto, monkeypatch: pytest.MonkeyPatch) -> Moto:
    for name, value in moto.env().items():
        monkeypatch.setenv(name, value)
    return moto


def test_a_secret_never_shows_itself() -> None:
    secret = Secret(KEY)
    shown = [repr(secret), str(secret), f"{secret}", "%s" % (secret,), repr({"key": secret}), repr([secret])]  # noqa: UP031
    assert all(KEY not in text for text in shown)
    assert secret.reveal() == KEY
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_the_key_itself_wins_and_nothing_is_fetched() -> None:
    assert api_key(Secret(KEY), "arn:aws:secretsmanager:us-east-1:1:secret:never-read", Deadline(1)).reveal() == KEY


def test_no_key_anywhere_says_what_to_set() -> None:
    with pytest.raises(SecretError, match="set LABELBOX_API_KEY_SECRET"):
        api_key(None, None, Deadline(1))


def test_an_unknown_reference_form_is_named() -> None:
    with pytest.raises(SecretError, match="is not a secret reference"):
        fetch("vault:kv/labelbox", Deadline(1), Stores())


# --- AWS (moto) -------------------------------------------------------------------------------------------------


def test_secrets_manager_string_and_json(aws: Moto) -> None:
    client = aws.client("secretsmanager")
    plain = client.create_secret(Name="lb-plain", SecretString=f"{KEY}\n")["ARN"]
    structured = client.create_secret(Name="lb-json", SecretString=json.dumps({"api_key": KEY, "other": 1}))["ARN"]
    assert api_key(None, plain, Deadline(10)).reveal() == KEY
    assert api_key(None, structured, Deadline(10)).reveal() == KEY


def test_secrets_manager_problems_name_the_fix_not_the_value(aws: Moto) -> None:
    client = aws.client("secretsmanager")
    no_field = client.create_secret(Name="lb-nofield", SecretString=json.dumps({"token": KEY}))["ARN"]
    with pytest.raises(SecretError, match="without a string 'api_key' field") as failure:
        api_key(None, no_field, Deadline(10))
    assert KEY not in str(failure.value)
    missing = no_field.replace("lb-nofield", "lb-missing")
    with pytest.raises(SecretError, match=r"ResourceNotFoundException\): no such secret"):
        api_key(None, missing, Deadline(10))


def test_the_key_is_fetched_once_per_warm_instance(aws: Moto) -> None:
    client = aws.client("secretsmanager")
    arn = client.create_secret(Name="lb-once", SecretString=KEY)["ARN"]
    assert api_key(None, arn, Deadline(10)).reveal() == KEY
    client.put_secret_value(SecretId=arn, SecretString="rotated-key")
    assert api_key(None, arn, Deadline(10)).reveal() == KEY  # cached: no second fetch
    forget(arn)  # as the registry does when Labelbox refuses the key
    assert api_key(None, arn, Deadline(10)).reveal() == "rotated-key"


def test_ssm_parameters_by_arn_and_by_name(aws: Moto) -> None:
    ssm = aws.client("ssm")
    ssm.put_parameter(Name="/labelbox/api-key", Value=KEY, Type="SecureString")
    arn = f"arn:aws:ssm:{aws.region}:{aws.account_id}:parameter/labelbox/api-key"
    assert api_key(None, arn, Deadline(10)).reveal() == KEY
    assert api_key(None, "ssm:/labelbox/api-key", Deadline(10)).reveal() == KEY
    with pytest.raises(SecretError, match="ParameterNotFound"):
        api_key(None, "ssm:/labelbox/nothing-here", Deadline(10))


def test_a_refused_key_from_a_store_is_fetched_again(aws: Moto) -> None:
    client = aws.client("secretsmanager")
    arn = client.create_secret(Name="lb-rotate", SecretString="an-old-key")["ARN"]
    with running_endpoint() as endpoint:
        dataset = endpoint.create_dataset("d")
        env = {
            "INGEST_REGISTRY": f"labelbox://{dataset}",
            "LABELBOX_ENDPOINT": endpoint.url,
            "LABELBOX_API_KEY_SECRET": arn,
        }
        registry = LabelboxRegistry.from_settings(Settings.from_env(env))
        [refused] = registry.register([payload(1, dataset)], Deadline(10))
        assert refused.retryable and f"put a valid key in the secret {arn}" in refused.message
        client.put_secret_value(SecretId=arn, SecretString=API_KEY)  # a human fixes the secret
        [registered] = registry.register([payload(1, dataset)], Deadline(10))  # the same warm instance
        assert registered.status is RowStatus.UPSERTED


# --- GCP and Azure (local REST stand-ins) ------------------------------------------------------------------------


class CloudStores:
    """Answers as the GCP metadata server, Secret Manager, the Azure identity endpoint and Key Vault do."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.secret_status = 200
        self.vault_body: bytes | None = None
        stores = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                stores.calls.append((self.path, dict(self.headers.items())))
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if parts.path == "/computeMetadata/v1/instance/service-accounts/default/token":
                    ok = self.headers.get("Metadata-Flavor") == "Google"
                    self.answer(200 if ok else 403, {"access_token": "gcp-token", "expires_in": 3599})
                elif parts.path.endswith(":access"):
                    ok = self.headers.get("Authorization") == "Bearer gcp-token"
                    data = base64.b64encode(KEY.encode()).decode()
                    status = stores.secret_status if ok else 401
                    self.answer(status, {"name": parts.path, "payload": {"data": data}})
                elif parts.path == "/msi/token":
                    ok = self.headers.get("X-IDENTITY-HEADER") == "identity-header" and query.get("api-version")
                    self.answer(200 if ok else 400, {"access_token": "azure-token", "resource": query.get("resource")})
                elif parts.path.startswith("/secrets/"):
                    ok = self.headers.get("Authorization") == "Bearer azure-token" and query.get("api-version") == "7.4"
                    body = stores.vault_body or json.dumps({"value": KEY, "id": parts.path}).encode()
                    self.answer(stores.secret_status if ok else 401, body)
                else:
                    self.answer(404, {"error": "no route"})

            def answer(self, status: int, document: Any) -> None:
                body = document if isinstance(document, bytes) else json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stores(self) -> Stores:
        return Stores(
            gcp_metadata=self.url,
            gcp_secret_manager=self.url,
            azure_identity_endpoint=f"{self.url}/msi/token",
            azure_identity_header="identity-header",
            azure_client_id=None,
        )

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def cloud() -> Iterator[CloudStores]:
    stores = CloudStores()
    yield stores
    stores.stop()


def test_gcp_secret_manager_with_the_metadata_token(cloud: CloudStores) -> None:
    assert api_key(None, "projects/p1/secrets/labelbox", Deadline(5), cloud.stores()).reveal() == KEY
    token_call, access_call = cloud.calls
    assert token_call[1]["Metadata-Flavor"] == "Google"
    assert access_call[0] == "/v1/projects/p1/secrets/labelbox/versions/latest:access"
    fetch("projects/p1/secrets/labelbox/versions/3", Deadline(5), cloud.stores())
    assert cloud.calls[-1][0] == "/v1/projects/p1/secrets/labelbox/versions/3:access"


def test_gcp_permission_problem_says_which_role(cloud: CloudStores) -> None:
    cloud.secret_status = 403
    with pytest.raises(SecretError, match=r"roles/secretmanager\.secretAccessor"):
        fetch("projects/p1/secrets/labelbox", Deadline(5), cloud.stores())


def test_gcp_off_gcp_is_a_clear_error() -> None:
    stores = Stores(gcp_metadata="http://metadata.invalid")
    with pytest.raises(SecretError, match=r"no token from the GCP metadata server at http://metadata\.invalid"):
        fetch("projects/p1/secrets/labelbox", Deadline(3), stores)


def test_azure_key_vault_with_the_managed_identity(cloud: CloudStores) -> None:
    reference = f"{cloud.url}/secrets/labelbox-api-key"
    assert api_key(None, reference, Deadline(5), cloud.stores()).reveal() == KEY
    token_call, vault_call = cloud.calls
    assert "resource=https%3A%2F%2Fvault.azure.net" in token_call[0]
    assert token_call[1]["X-IDENTITY-HEADER"] == "identity-header"
    assert vault_call[0] == "/secrets/labelbox-api-key?api-version=7.4"


def test_azure_without_a_managed_identity_says_so(cloud: CloudStores) -> None:
    stores = Stores(azure_identity_endpoint=None, azure_identity_header=None)
    with pytest.raises(SecretError, match="enable the function app's managed identity"):
        fetch(f"{cloud.url}/secrets/labelbox-api-key", Deadline(5), stores)


def test_azure_permission_problem_says_which_role(cloud: CloudStores) -> None:
    cloud.secret_status = 403
    with pytest.raises(SecretError, match="Key Vault Secrets User"):
        fetch(f"{cloud.url}/secrets/labelbox-api-key", Deadline(5), cloud.stores())


def test_a_garbled_answer_is_reported_without_quoting_it(cloud: CloudStores, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    cloud.vault_body = f"value={KEY}".encode()
    with pytest.raises(SecretError, match="something other than JSON") as failure:
        fetch(f"{cloud.url}/secrets/labelbox-api-key", Deadline(5), cloud.stores())
    assert KEY not in str(failure.value) and KEY not in caplog.text
