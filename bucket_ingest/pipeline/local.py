"""The whole ingester on one machine: emulated buckets of the three clouds, their event plumbing, the three
functions in their own processes, and one registry.

    with all_emulators() as (moto, gcs, azurite), LocalPipeline(PipelineConfig("sqlite:///tmp/c.sqlite"),
                                                                  moto, gcs, azurite) as pipeline:
        upload = pipeline.upload("gcp", "photos/cat 1.jpg", b"...")
        pipeline.outcomes.wait_for(lambda seen: any(o.location == upload.location for o in seen), 30)

Targets (where an upload goes, and the path its event takes):

- ``aws``: S3 → SQS → Lambda (event source mapping) → ``handlers.aws.lambda_handler``
- ``aws-eventbridge``: S3 → EventBridge → SQS → Lambda → the same function
- ``gcp``: Cloud Storage → Pub/Sub → Eventarc → Cloud Run (functions-framework) → ``on_storage_event``
- ``azure``: Blob Storage → Event Grid → Azure Functions → ``on_blob_event``
"""

from __future__ import annotations

import contextlib
import tempfile
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bucket_ingest.emulators import Azurite, FakeGcs, Managed, ManagedProcess, Moto
from bucket_ingest.pipeline.aws import AwsResources, SqsEventSourceMapping, create_resources
from bucket_ingest.pipeline.azure import BlobChanges, EventGridPush
from bucket_ingest.pipeline.functions import LambdaRuntime, azure_functions_host, cloud_run_function
from bucket_ingest.pipeline.gcp import EventarcTrigger
from bucket_ingest.pipeline.outcomes import OutcomeLog
from bucket_ingest.pipeline.retry import EVENT_GRID, EVENTARC, PushDelivery
from shared.events.model import Cloud, EventKind, ObjectEvent

TARGETS = ("aws", "aws-eventbridge", "gcp", "azure")


@dataclass(frozen=True)
class PipelineConfig:
    """How the local platforms are set up. Durations of the push platforms' retry schedules are the vendors'
    multiplied by ``time_scale``; the SQS visibility timeout is in real seconds."""

    registry: str  # INGEST_REGISTRY of the three functions
    settings: Mapping[str, str] = field(default_factory=dict)  # their other variables (INGEST_*, LABELBOX_*)
    clouds: Collection[Cloud] = (Cloud.AWS, Cloud.GCP, Cloud.AZURE)
    prefix: str = ""  # bucket, queue and container names start with it; random when empty
    watch_everything: bool = False  # events of every GCS bucket and Azure container, not only the pipeline's
    # AWS: the queue and Lambda's event source mapping
    batch_size: int = 10
    batching_window: float = 0.0
    visibility_timeout: int = 2
    max_receive_count: int = 5
    pollers: int = 1
    lambda_instances: int = 1
    lambda_timeout: int = 60
    # GCP and Azure: push delivery
    time_scale: float = 1 / 40
    eventarc_attempts: int | None = None  # None: until the (scaled) 24-hour retention, as without a DLQ
    event_grid_attempts: int = 30
    push_workers: int = 4
    azure_interval: float = 0.2
    # every platform: the fraction of events delivered twice on purpose (at-least-once)
    duplicates: float = 0.0
    seed: int | None = None
    log_file: Path | None = None


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    cloud: Cloud
    bucket: str
    path: str  # the way an event travels, for display
    account: str | None = None  # Azure storage account


@dataclass(frozen=True, slots=True)
class Upload:
    target: Target
    key: str
    location: str  # as the functions log it (ObjectEvent.location)
    started: float  # time.time() when the upload request was sent


class LocalPipeline(Managed):
    """Starts (and stops, in reverse order) the plumbing of ``config.clouds`` on running emulators."""

    def __init__(self, config: PipelineConfig, moto: Moto, gcs: FakeGcs, azurite: Azurite) -> None:
        self.config = config
        self.moto, self.gcs, self.azurite = moto, gcs, azurite
        self.prefix = config.prefix or f"ingest-{uuid.uuid4().hex[:8]}"
        self.outcomes = OutcomeLog(config.log_file)
        self.targets: dict[str, Target] = {}
        self.aws: AwsResources | None = None
        self.lambda_runtime: LambdaRuntime | None = None
        self.event_source_mapping: SqsEventSourceMapping | None = None
        self.cloud_run: ManagedProcess | None = None
        self.eventarc: EventarcTrigger | None = None
        self.functions_host: ManagedProcess | None = None
        self.event_grid: EventGridPush | None = None
        self.blob_changes: BlobChanges | None = None
        self._stack = contextlib.ExitStack()
        self._clients: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"LocalPipeline({self.prefix!r}, targets={sorted(self.targets)})"

    def _settings(self) -> dict[str, str]:
        return {"INGEST_REGISTRY": self.config.registry, **self.config.settings}

    # ------------------------------------------------------------------------------------------- start / stop

    def start(self) -> None:
        self._stack.callback(self.outcomes.close)
        starters = {Cloud.AWS: self._start_aws, Cloud.GCP: self._start_gcp, Cloud.AZURE: self._start_azure}
        for cloud in (Cloud.AWS, Cloud.GCP, Cloud.AZURE):
            if cloud in self.config.clouds:
                starters[cloud]()

    def stop(self) -> None:
        self._stack.close()

    def _start(self, part: Any) -> Any:
        part.start()
        self._stack.callback(part.stop)
        return part

    def _start_aws(self) -> None:
        config, moto = self.config, self.moto
        self.aws = create_resources(
            moto.client("s3"),
            moto.client("sqs"),
            moto.client("events"),
            self.prefix,
            visibility_timeout=config.visibility_timeout,
            max_receive_count=config.max_receive_count,
            region=moto.region,
            account_id=moto.account_id,
        )
        self._add(Target("aws", Cloud.AWS, self.aws.notification_bucket, "S3 → SQS → Lambda"))
        self._add(Target("aws-eventbridge", Cloud.AWS, self.aws.eventbridge_bucket, "S3 → EventBridge → SQS → Lambda"))
        self.lambda_runtime = self._start(
            LambdaRuntime(
                {**moto.env(), **self._settings()},
                instances=config.lambda_instances,
                timeout_s=config.lambda_timeout,
                region=moto.region,
                account_id=moto.account_id,
                on_line=self.outcomes.reader(Cloud.AWS),
            )
        )
        self.event_source_mapping = self._start(
            SqsEventSourceMapping(
                lambda: moto.client("sqs"),
                self.aws.queue_url,
                self.aws.queue_arn,
                moto.region,
                self.lambda_runtime.invoke,
                batch_size=config.batch_size,
                batching_window=config.batching_window,
                concurrency=config.pollers,
                duplicates=config.duplicates,
                seed=config.seed,
            )
        )

    def _start_gcp(self) -> None:
        config, gcs = self.config, self.gcs
        if gcs.publisher is None:
            raise ValueError("the GCP path needs fake-gcs-server publishing to a PubSubPublisher")
        bucket = f"{self.prefix}-gcs"
        gcs.client().create_bucket(bucket)
        self._add(Target("gcp", Cloud.GCP, bucket, "Cloud Storage → Pub/Sub → Eventarc → Cloud Run"))
        source_dir = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="bucket-ingest-gcp-")))
        self.cloud_run = self._start(
            cloud_run_function(source_dir, {**gcs.env(), **self._settings()}, on_line=self.outcomes.reader(Cloud.GCP))
        )
        policy = EVENTARC.scaled(config.time_scale)
        if config.eventarc_attempts is not None:
            policy = policy.with_attempts(config.eventarc_attempts)
        self.eventarc = self._start(
            EventarcTrigger(
                gcs.publisher,
                f"http://127.0.0.1:{self.cloud_run.port}/",
                policy,
                buckets=None if config.watch_everything else {bucket},
                workers=config.push_workers,
                timeout_s=config.lambda_timeout,
                duplicates=config.duplicates,
                seed=config.seed,
            )
        )

    def _start_azure(self) -> None:
        config, azurite = self.config, self.azurite
        container = f"{self.prefix}-az"
        service = azurite.client()
        service.create_container(container)
        self._add(Target("azure", Cloud.AZURE, container, "Blob Storage → Event Grid → Functions", azurite.account))
        self.functions_host = self._start(
            azure_functions_host(self._settings(), on_line=self.outcomes.reader(Cloud.AZURE))
        )
        self.event_grid = self._start(
            EventGridPush(
                f"http://127.0.0.1:{self.functions_host.port}",
                EVENT_GRID.scaled(config.time_scale).with_attempts(config.event_grid_attempts),
                workers=config.push_workers,
                timeout_s=config.lambda_timeout,
                duplicates=config.duplicates,
                seed=config.seed,
            )
        )
        self.blob_changes = self._start(
            BlobChanges(
                service,
                azurite.account,
                self.event_grid.submit,
                containers=None if config.watch_everything else [container],
                interval=config.azure_interval,
            )
        )

    def _add(self, target: Target) -> None:
        self.targets[target.name] = target

    # ------------------------------------------------------------------------------------------------ objects

    def _bucket(self, target: Target) -> Any:
        client = self._clients.get(target.name)
        if client is None:
            if target.cloud is Cloud.AWS:
                client = self.moto.client("s3")
            elif target.cloud is Cloud.GCP:
                client = self.gcs.client().bucket(target.bucket)
            else:
                client = self.azurite.client().get_container_client(target.bucket)
            self._clients[target.name] = client
        return client

    def location(self, target: str, key: str) -> str:
        """How the functions name this object in their logs (``ObjectEvent.location``)."""
        t = self.targets[target]
        return ObjectEvent(t.cloud, EventKind.CREATED, t.bucket, key, account=t.account).location

    def target_of(self, location: str) -> Target | None:
        """The target whose bucket holds the object at ``location`` (as the functions log it)."""
        return next((t for t in self.targets.values() if location.startswith(self.location(t.name, ""))), None)

    def upload(self, target: str, key: str, data: bytes = b"", content_type: str | None = None) -> Upload:
        """Put one object with the cloud's own client, as a user would."""
        t = self.targets[target]
        client = self._bucket(t)
        started = time.time()
        UPLOADERS[t.cloud](client, t.bucket, key, data, content_type)
        return Upload(t, key, self.location(target, key), started)

    def delete(self, target: str, key: str) -> Upload:
        t = self.targets[target]
        client = self._bucket(t)
        started = time.time()
        DELETERS[t.cloud](client, t.bucket, key)
        return Upload(t, key, self.location(target, key), started)

    # ------------------------------------------------------------------------------------------------- status

    def platform_errors(self) -> list[str]:
        """The last error each polling platform kept going after (SQS poller, Azurite listing), if any."""
        errors = []
        if self.event_source_mapping is not None and self.event_source_mapping.stats.last_error:
            errors.append(f"Lambda's SQS poller: {self.event_source_mapping.stats.last_error}")
        if self.blob_changes is not None and self.blob_changes.last_error:
            errors.append(f"Event Grid's Azurite listing: {self.blob_changes.last_error}")
        return errors

    def dead_letters(self) -> dict[str, list[Any]]:
        """What each platform gave up on: the SQS dead-letter queue's messages, Eventarc's and Event Grid's."""
        letters: dict[str, list[Any]] = {}
        if self.aws is not None:
            sqs = self.moto.client("sqs")
            response = sqs.receive_message(QueueUrl=self.aws.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
            letters["aws"] = response.get("Messages", [])
        pushes: list[tuple[str, PushDelivery[Any] | None]] = [
            ("gcp", self.eventarc.delivery if self.eventarc else None),
            ("azure", self.event_grid.delivery if self.event_grid else None),
        ]
        for name, delivery in pushes:
            if delivery is not None:
                letters[name] = [p.event for p in delivery.dead_letters]
        return letters


def _s3_put(client: Any, bucket: str, key: str, data: bytes, content_type: str | None) -> None:
    client.put_object(Bucket=bucket, Key=key, Body=data, **({"ContentType": content_type} if content_type else {}))


def _gcs_put(bucket: Any, name: str, key: str, data: bytes, content_type: str | None) -> None:
    bucket.blob(key).upload_from_string(data, content_type=content_type or "application/octet-stream")


def _azure_put(container: Any, name: str, key: str, data: bytes, content_type: str | None) -> None:
    from azure.storage.blob import ContentSettings

    settings = ContentSettings(content_type=content_type) if content_type else None
    container.upload_blob(key, data, overwrite=True, content_settings=settings)


UPLOADERS: Mapping[Cloud, Callable[[Any, str, str, bytes, str | None], None]] = {
    Cloud.AWS: _s3_put,
    Cloud.GCP: _gcs_put,
    Cloud.AZURE: _azure_put,
}
DELETERS: Mapping[Cloud, Callable[[Any, str, str], None]] = {
    Cloud.AWS: lambda client, bucket, key: client.delete_object(Bucket=bucket, Key=key),
    Cloud.GCP: lambda bucket, name, key: bucket.blob(key).delete(),
    Cloud.AZURE: lambda container, name, key: container.delete_blob(key),
}
