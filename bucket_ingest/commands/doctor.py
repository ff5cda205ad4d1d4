"""`bucket-ingest doctor`: check the Labelbox configuration end to end, with the functions' environment variables.

Against LABELBOX_ENDPOINT (Labelbox itself, or `bucket-ingest labelbox-endpoint`): the API key can be had and is
accepted; every dataset the settings name (INGEST_REGISTRY, INGEST_ROUTES) exists, has an IAM integration
attached, and passes Labelbox's ``validateDataset``; the metadata fields INGEST_METADATA_SCHEMAS maps exist and
are of a kind the payload values fit. Then it shows the ``row_data`` URI and global key each cloud sends for a
sample object. Exit status 0 when everything passes, 1 when a check fails, 2 when the settings are invalid.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.deadline import Deadline
from shared.events.model import Cloud
from shared.global_keys import global_key
from shared.settings import Settings, SettingsError
from shared.uris import ObjectLocation, object_uri

if TYPE_CHECKING:
    from shared.registries.labelbox import LabelboxApi

CHECK_SECONDS = 30.0
SAMPLE_KEY = "photos/2024/cat 1.jpg"
# A sample object per cloud, to show the URI form each function sends (Labelbox opens it with the integration).
SAMPLES: tuple[tuple[Cloud, Callable[[Settings], ObjectLocation]], ...] = (
    (Cloud.AWS, lambda s: ObjectLocation(Cloud.AWS, "my-bucket", SAMPLE_KEY, region=s.aws_region or "us-east-1")),
    (Cloud.GCP, lambda s: ObjectLocation(Cloud.GCP, "my-bucket", SAMPLE_KEY)),
    (Cloud.AZURE, lambda s: ObjectLocation(Cloud.AZURE, "container", SAMPLE_KEY, account="myaccount")),
)
# The integration provider that signs each cloud's URIs.
PROVIDERS = {"AWS": Cloud.AWS, "GCP": Cloud.GCP, "AZURE": Cloud.AZURE}
METADATA_KINDS = {"CustomMetadataString", "CustomMetadataNumber", "CustomMetadataDateTime"}

_WHO = "query BucketIngestDoctorUser {user {id email} organization {id name}}"
_DATASET = (
    "query BucketIngestDoctorDataset($id: ID!) "
    "{dataset(where: {id: $id}) {id name rowCount signer {id name provider valid}}}"
)
_VALIDATE = (
    "mutation BucketIngestDoctorValidate($id: ID!) {validateDataset(where: {id: $id}) {valid checks {name success}}}"
)
_ONTOLOGY = "query BucketIngestDoctorOntology {customMetadataOntology {id name kind}}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options: doctor reads the same environment variables as the functions."""


@dataclass
class Report:
    failures: int = 0

    def ok(self, text: str) -> None:
        print(f"  ok    {text}")

    def fail(self, text: str) -> None:
        self.failures += 1
        print(f"  FAIL  {text}")

    def note(self, text: str) -> None:
        print(f"  note  {text}")


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as exc:
        print(f"bucket-ingest doctor: {exc}")
        return 2
    report = Report()
    print(f"registry {settings.registry_url}")
    if settings.registry_url.startswith("labelbox://"):
        _check_labelbox(settings, report)
    else:
        report.note("the embedded catalog: nothing to check against Labelbox (set INGEST_REGISTRY=labelbox://...)")
    print("row_data and global key each cloud sends, for a sample object:")
    for cloud, sample in SAMPLES:
        location = sample(settings)
        print(f"  {cloud.value:<6} {object_uri(location)}\n         global key {global_key(location)}")
    if report.failures:
        print(f"{report.failures} problem{'s' if report.failures > 1 else ''} found")
        return 1
    print("all checks passed")
    return 0


def _check_labelbox(settings: Settings, report: Report) -> None:
    from shared.registries.labelbox import LabelboxApi, LabelboxError
    from shared.secrets import SecretError, api_key
    from shared.transport import TransportError

    print(f"endpoint {settings.labelbox_endpoint}")
    deadline = Deadline(CHECK_SECONDS)
    source = "LABELBOX_API_KEY" if settings.api_key else f"the secret {settings.api_key_secret}"
    try:
        api_key(settings.api_key, settings.api_key_secret, deadline)
    except SecretError as exc:
        report.fail(f"API key: {exc}")
        return
    report.ok(f"API key read from {source}")
    api = LabelboxApi(settings.labelbox_endpoint, settings.api_key, settings.api_key_secret)
    failures = (LabelboxError, TransportError, SecretError)
    try:
        who = api.execute(_WHO, {}, deadline)
    except failures as exc:
        report.fail(f"API key not accepted: {exc}")
        return
    user, organization = who.get("user") or {}, who.get("organization") or {}
    report.ok(f"API key accepted: user {user.get('email')}, organization {organization.get('name')!r}")
    datasets = dict.fromkeys([settings.default_dataset or "", *(route.dataset for route in settings.routes)])
    for dataset_id in filter(None, datasets):
        try:
            _check_dataset(api, dataset_id, deadline, report)
        except failures as exc:
            report.fail(f"dataset {dataset_id}: {exc}")
    if settings.metadata_schemas:
        try:
            ontology = api.execute(_ONTOLOGY, {}, deadline).get("customMetadataOntology") or []
        except failures as exc:
            report.fail(f"metadata fields: {exc}")
            return
        kinds = {str(field["id"]): (str(field["name"]), str(field["kind"])) for field in ontology}
        for name, schema_id in settings.metadata_schemas.items():
            if schema_id not in kinds:
                report.fail(f"INGEST_METADATA_SCHEMAS: {name}={schema_id} is not a metadata field of the organization")
            elif kinds[schema_id][1] not in METADATA_KINDS:
                report.fail(f"INGEST_METADATA_SCHEMAS: {name} maps to {kinds[schema_id][0]!r}, a {kinds[schema_id][1]}")
            else:
                report.ok(f"metadata {name} → {kinds[schema_id][0]!r} ({kinds[schema_id][1]})")


def _check_dataset(api: LabelboxApi, dataset_id: str, deadline: Deadline, report: Report) -> None:
    found = api.execute(_DATASET, {"id": dataset_id}, deadline, tolerate_not_found=True).get("dataset")
    if not found:
        report.fail(
            f"dataset {dataset_id}: not found (or not visible to this key): check INGEST_REGISTRY/INGEST_ROUTES"
        )
        return
    report.ok(f"dataset {dataset_id} {found.get('name')!r} exists ({found.get('rowCount')} rows)")
    signer = found.get("signer")
    if not signer:
        report.fail(
            f"dataset {dataset_id}: no IAM integration attached: Labelbox cannot open the objects' URIs; attach one "
            "(Labelbox → dataset → settings → IAM integration, or the SDK's dataset.add_iam_integration)"
        )
        return
    cloud = PROVIDERS.get(str(signer.get("provider")).upper())
    signs = f"signs {cloud.value} URIs" if cloud else "provider unknown"
    report.ok(f"dataset {dataset_id}: IAM integration {signer.get('name')!r} ({signer.get('provider')}, {signs})")
    validation = api.execute(_VALIDATE, {"id": dataset_id}, deadline).get("validateDataset") or {}
    if validation.get("valid"):
        report.ok(f"dataset {dataset_id}: validateDataset passes")
    else:
        failed = [str(c.get("name")) for c in validation.get("checks") or [] if not c.get("success")]
        report.fail(
            f"dataset {dataset_id}: validateDataset fails ({', '.join(failed) or 'no detail'}): check the "
            "integration's role/service account/app registration and its access to the bucket"
        )
