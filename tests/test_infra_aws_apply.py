"""End to end on moto: `terraform apply` of infra/aws/examples/basic with every AWS endpoint pointed at moto's
server, then an upload to the bucket it created reaches its queue and, through the packaged function (build/aws.zip
unpacked, run by the real Lambda bootstrap awslambdaric), the registry.

moto cannot run Lambda functions without Docker, so the test plays Lambda's SQS poller: it disables the event
source mapping Terraform created (after checking it), receives the messages and invokes the function with them,
then deletes what the function did not report as failed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from bucket_ingest.emulators import Moto
from bucket_ingest.pipeline.functions import LambdaRuntime
from tests.support.handlers import Catalog
from tests.support.infra import (
    copy_module,
    output,
    packages_fixture,  # noqa: F401 (fixture)
    require_provider_mirror,
    run,
    terraform,
    terraform_env,
    unpack,
)

KEY = "incoming/a b+c é.jpg"  # a space, a '+' and non-ASCII: S3 events encode them, the function must not lose them
# Every service the module creates something in
SERVICES = ("cloudwatch", "cloudwatchlogs", "eventbridge", "iam", "lambda", "s3", "secretsmanager", "sqs", "sts")


def provider_override(moto: Moto) -> str:
    """A Terraform override file: the example's aws provider, pointed at moto with fake credentials."""
    endpoints = "\n".join(f'    {service} = "{moto.endpoint_url}"' for service in SERVICES)
    return (
        'provider "aws" {\n'
        f'  region                      = "{moto.region}"\n'
        f'  access_key                  = "{moto.access_key_id}"\n'
        f'  secret_key                  = "{moto.secret_access_key}"\n'
        "  s3_use_path_style           = true\n"
        "  skip_credentials_validation = true\n"
        "  skip_metadata_api_check     = true\n"
        "  skip_requesting_account_id  = true\n"
        f"  endpoints {{\n{endpoints}\n  }}\n"
        "}\n"
    )


def receive_until_object_event(moto: Moto, queue_url: str, timeout: float = 20.0) -> list[dict[str, Any]]:
    """Every message up to and including the first S3 object event (S3 sends an s3:TestEvent first)."""
    sqs, received = moto.client("sqs"), []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"]
        ).get("Messages", [])
        received += batch
        if any('"Records"' in m["Body"] for m in received):
            return received
    pytest.fail(f"no object event reached {queue_url} in {timeout} s (got {[m['Body'][:80] for m in received]})")


def lambda_sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS poller builds from received messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


def visible_messages(moto: Moto, queue_url: str) -> int:
    attributes = moto.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


@pytest.mark.slow
def test_terraform_apply_on_moto_then_an_upload_is_registered(tmp_path: Path, packages: dict[str, Path]) -> None:
    tf, env = terraform(), terraform_env(tmp_path, require_provider_mirror())
    example = copy_module("aws", tmp_path) / "examples" / "basic"
    with Moto() as moto:
        (example / "moto_override.tf").write_text(provider_override(moto), encoding="utf-8")
        init = run([tf, "init", "-backend=false", "-input=false", "-no-color"], cwd=example, env=env)
        assert init.returncode == 0, output(init)
        variables = ["-var=labelbox_dataset_id=ds1", f"-var=package_path={packages['aws']}", "-var=delete_policy=tag"]
        apply = run([tf, "apply", "-auto-approve", "-no-color", *variables], cwd=example, env=env, timeout=600)
        assert apply.returncode == 0, output(apply)
        outputs = {
            k: v["value"] for k, v in json.loads(run([tf, "output", "-json"], cwd=example, env=env).stdout).items()
        }

        # What Terraform deployed: the packaged handler, fed by the queue with partial batch responses
        functions, sqs = moto.client("lambda"), moto.client("sqs")
        config = functions.get_function_configuration(FunctionName=outputs["function_name"])
        assert (config["Handler"], config["Runtime"], config["Architectures"]) == (
            "handlers.aws.lambda_handler",
            "python3.12",
            ["arm64"],
        )
        queue = sqs.get_queue_attributes(QueueUrl=outputs["queue_url"], AttributeNames=["All"])["Attributes"]
        assert json.loads(queue["RedrivePolicy"])["maxReceiveCount"] == 5
        [mapping] = functions.list_event_source_mappings(EventSourceArn=queue["QueueArn"])["EventSourceMappings"]
        assert mapping["FunctionArn"] == config["FunctionArn"]
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        functions.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)  # the test polls from here on

        moto.client("s3").put_object(Bucket=outputs["bucket_name"], Key=KEY, Body=b"\xff\xd8\xff jpeg bytes")
        messages = receive_until_object_event(moto, outputs["queue_url"])

        # The packaged function, as deployed (its variables, but the registry a local catalog), under awslambdaric
        catalog = Catalog(tmp_path)
        function_env = {
            **config["Environment"]["Variables"],
            **moto.env(),  # the delete policy is tag: a delete would be confirmed against moto's S3
            "INGEST_REGISTRY": catalog.url,
        }
        lines: list[str] = []
        with LambdaRuntime(
            function_env,
            handler=config["Handler"],
            function_name=config["FunctionName"],
            timeout_s=config["Timeout"],
            memory_mb=config["MemorySize"],
            region=moto.region,
            account_id=moto.account_id,
            task_root=unpack(packages["aws"], tmp_path / "function"),  # the handler comes from the zip, not here
            on_line=lines.append,
        ) as function:
            result = function.invoke(lambda_sqs_event(messages, queue["QueueArn"], moto.region))
        assert result.error is None, (result.error, lines[-20:])
        assert result.response == {"batchItemFailures": []}, lines[-20:]
        for message in messages:  # the poller deletes a batch that reported no failure
            sqs.delete_message(QueueUrl=outputs["queue_url"], ReceiptHandle=message["ReceiptHandle"])

        [row] = catalog.rows()
        bucket = outputs["bucket_name"]
        assert row["external_id"] == f"aws:{bucket}/{KEY}"
        prefix = f"https://{bucket}.s3.{moto.region}.amazonaws.com/"
        assert row["row_data"].startswith(prefix)
        assert unquote(row["row_data"].removeprefix(prefix)) == KEY
        assert visible_messages(moto, outputs["queue_url"]) == 0
        assert visible_messages(moto, outputs["dead_letter_queue_url"]) == 0
        catalog.close()
