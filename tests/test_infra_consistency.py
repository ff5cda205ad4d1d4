"""The template and the modules agree with the code: entry points that import, runtimes the zips are built for,
and environment variables the functions actually read (shared.settings.VARIABLES, or platform variables the code
itself names)."""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from typing import Any

import pytest

from bucket_ingest.commands.invoke import indexed_functions
from bucket_ingest.package import GCP_MAIN, TARGETS
from shared.settings import VARIABLES, DeletePolicy
from tests.support.infra import INFRA, ROOT, blocks, locals_of, parse_module, template, variable_default

# Platform variables a deployment may set besides VARIABLES; each must be read somewhere in the deployed code.
PLATFORM_VARIABLES = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "AZURE_CLIENT_ID"}
# What every deployment configures: the same features on every cloud.
EVERY_DEPLOYMENT = {
    "INGEST_REGISTRY",
    "LABELBOX_API_KEY_SECRET",
    "LABELBOX_ENDPOINT",
    "INGEST_DELETE_POLICY",
    "INGEST_ALLOWED_BUCKETS",
    "INGEST_INCLUDE",
    "INGEST_EXCLUDE",
}
ARCHITECTURES = {"arm64": "aarch64", "x86_64": "x86_64"}  # Lambda's names → pip's


def sam_function() -> dict[str, Any]:
    properties: dict[str, Any] = template()["Resources"]["IngestFunction"]["Properties"]
    return properties


def aws_function() -> dict[str, Any]:
    return blocks(parse_module(INFRA / "aws"), "resource", "aws_lambda_function")["ingest"]


def gcp_function() -> dict[str, Any]:
    return blocks(parse_module(INFRA / "gcp"), "resource", "google_cloudfunctions2_function")["ingest"]


def azure_app() -> dict[str, Any]:
    return blocks(parse_module(INFRA / "azure"), "resource", "azurerm_function_app_flex_consumption")["ingest"]


def deployed_variables() -> dict[str, Mapping[str, Any]]:
    return {
        "template.yaml": sam_function()["Environment"]["Variables"],
        "infra/aws": aws_function()["environment"][0]["variables"],
        "infra/gcp": gcp_function()["service_config"][0]["environment_variables"],
        "infra/azure": azure_app()["app_settings"],
    }


def deployed_code() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for d in ("handlers", "shared") for p in (ROOT / d).rglob("*.py"))


def resolve(dotted: str) -> Any:
    module, _, attribute = dotted.rpartition(".")
    return getattr(importlib.import_module(module), attribute)


@pytest.mark.parametrize("where", ["template.yaml", "infra/aws", "infra/gcp", "infra/azure"])
def test_every_variable_a_deployment_sets_is_one_the_functions_read(where: str) -> None:
    names = set(deployed_variables()[where])
    unknown = names - set(VARIABLES) - PLATFORM_VARIABLES
    assert unknown == set(), f"{where} sets variables no function reads: {sorted(unknown)}"
    assert names >= EVERY_DEPLOYMENT, f"{where} lacks {sorted(EVERY_DEPLOYMENT - names)}"


def test_the_platform_variables_are_read_by_the_deployed_code() -> None:
    code = deployed_code()
    for name in PLATFORM_VARIABLES:
        assert f'"{name}"' in code, f"{name} is set by a deployment but no deployed code reads it"


def test_both_aws_deployments_set_the_same_variables() -> None:
    variables = deployed_variables()
    assert set(variables["template.yaml"]) == set(variables["infra/aws"])


def test_every_deployment_registers_into_the_labelbox_dataset_it_is_given() -> None:
    registries = {where: variables["INGEST_REGISTRY"] for where, variables in deployed_variables().items()}
    assert registries == {
        "template.yaml": {"Fn::Sub": "labelbox://${LabelboxDatasetId}"},
        "infra/aws": "labelbox://${var.labelbox_dataset_id}",
        "infra/gcp": "labelbox://${var.labelbox_dataset_id}",
        "infra/azure": "labelbox://${var.labelbox_dataset_id}",
    }


def test_the_aws_function_is_the_handler_the_zip_is_built_for() -> None:
    for where, handler, runtime, architectures in (
        ("template.yaml", sam_function()["Handler"], sam_function()["Runtime"], sam_function()["Architectures"]),
        ("infra/aws", aws_function()["handler"], aws_function()["runtime"], aws_function()["architectures"]),
    ):
        assert handler == "handlers.aws.lambda_handler", where
        assert callable(resolve(handler)), where
        assert runtime == f"python{TARGETS['aws'].python_version}", where
        assert [ARCHITECTURES[a] for a in architectures] == [TARGETS["aws"].arch], where


def test_the_queue_reports_partial_batch_failures_in_both_aws_deployments() -> None:
    queue = sam_function()["Events"]["Queue"]
    assert queue["Type"] == "SQS"
    assert queue["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    mapping = blocks(parse_module(INFRA / "aws"), "resource", "aws_lambda_event_source_mapping")["queue"]
    assert mapping["function_response_types"] == ["ReportBatchItemFailures"]


def test_the_gcp_function_is_the_cloud_event_entry_point_main_py_exports() -> None:
    function = gcp_function()
    build = function["build_config"][0]
    assert build["runtime"] == "python" + TARGETS["gcp"].python_version.replace(".", "")
    entry_point = build["entry_point"]
    assert entry_point == "on_storage_event"
    assert callable(resolve(f"handlers.gcp.{entry_point}"))
    assert re.search(rf"from handlers\.gcp import .*\b{entry_point}\b", GCP_MAIN)

    trigger = function["event_trigger"][0]
    assert trigger["event_type"] == "google.cloud.storage.object.v1.finalized"
    assert trigger["retry_policy"] == "RETRY_POLICY_RETRY"
    deleted = blocks(parse_module(INFRA / "gcp"), "resource", "google_eventarc_trigger")["deleted"]
    assert {"attribute": "type", "value": "google.cloud.storage.object.v1.deleted"} in deleted["matching_criteria"]


def test_the_azure_subscription_targets_the_function_function_app_py_declares() -> None:
    module = parse_module(INFRA / "azure")
    declared = list(indexed_functions())  # indexed once per process, as the host does (azure.functions refuses twice)
    target = locals_of(module)["function_id"]
    name = target.rsplit("/functions/", 1)[1]
    assert name in declared, (target, declared)
    assert variable_default(module, "python_version") == TARGETS["azure"].python_version
    assert azure_app()["runtime_name"] == "python"

    local = locals_of(module)
    assert local["created_apis"] == ["PutBlob", "PutBlockList", "CopyBlob", "FlushWithClose"]
    subscription = blocks(module, "resource", "azurerm_eventgrid_system_topic_event_subscription")["blobs"]
    [string_in] = subscription["advanced_filter"][0]["string_in"]
    assert string_in["key"] == "data.api"
    assert subscription["azure_function_endpoint"][0]["function_id"] == "${local.function_id}"
    assert "time_sleep.function_indexed" in str(subscription["depends_on"])  # the handshake waits for the code


def test_every_delete_policy_the_code_knows_is_offered_and_no_other() -> None:
    policies = [p.value for p in DeletePolicy]
    assert template()["Parameters"]["DeletePolicy"]["AllowedValues"] == policies
    for cloud in ("aws", "gcp", "azure"):
        [validation] = [
            body["validation"][0]
            for block in parse_module(INFRA / cloud)["variable"]
            for name, body in block.items()
            if name == "delete_policy"
        ]
        assert re.findall(r'"(\w+)"', validation["condition"]) == policies, cloud


def test_the_api_key_references_have_the_forms_the_code_reads() -> None:
    gcp = gcp_function()["service_config"][0]["environment_variables"]["LABELBOX_API_KEY_SECRET"]
    assert re.fullmatch(r"projects/\$\{var\.project_id\}/secrets/\$\{local\.secret_id\}/versions/latest", gcp)
    azure = azure_app()["app_settings"]["LABELBOX_API_KEY_SECRET"]  # vault_uri is https://NAME.vault.azure.net/
    assert azure == "${azurerm_key_vault.this.vault_uri}secrets/${local.secret_name}"
    assert sam_function()["Environment"]["Variables"]["LABELBOX_API_KEY_SECRET"] == {
        "Fn::If": ["CreateSecret", {"Ref": "ApiKeySecret"}, {"Ref": "LabelboxApiKeySecretArn"}]
    }


def test_each_clouds_runtime_requirements_are_in_the_root_requirements() -> None:
    def names(text: str) -> set[str]:
        return {re.split(r"[<>=!~ \[]", line)[0].lower() for line in text.splitlines() if line[:1].isalnum()}

    union = names((ROOT / "requirements.txt").read_text(encoding="utf-8"))
    for cloud in TARGETS:
        wanted = names(TARGETS[cloud].requirements.read_text(encoding="utf-8"))
        assert wanted <= union, f"{cloud}: {sorted(wanted - union)} missing from requirements.txt"
