"""`bucket-ingest demo [--registry URL] [--watch]`: the whole ingester on this machine, against emulated buckets of
all three clouds, in real time.

Starts moto (S3, SQS, EventBridge), fake-gcs-server (with Pub/Sub notifications) and Azurite on free loopback
ports, the local platforms (Lambda's SQS poller, Eventarc, Event Grid) and the three functions in their own
processes; uploads a sample set to each cloud, shows every object's outcome as the function logs it with its
upload→registered latency, then a summary per target and how to upload more with the usual tools. ``--watch``
keeps everything running for your own uploads until Ctrl-C. Everything stops on exit, Ctrl-C or error.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
import threading
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import FrameType

from bucket_ingest.emulators import Azurite, EmulatorError, FakeGcs, Moto, PubSubPublisher
from bucket_ingest.pipeline import LocalPipeline, PipelineConfig, SeenOutcome, Target, Upload
from bucket_ingest.pipeline.outcomes import percentile
from bucket_ingest.pipeline.samples import REGISTER, SAMPLES
from shared.settings import Settings, SettingsError

WAIT_S = 60.0  # for the samples' outcomes
REGISTERED = frozenset({"created", "updated", "present", "upserted"})
# The variables passed on to the functions from the caller's environment (the Labelbox registry needs them).
PASSED_ON = ("LABELBOX_API_KEY", "LABELBOX_API_KEY_SECRET", "LABELBOX_ENDPOINT")
KEY_WIDTH = 38


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--registry",
        help="where rows go: labelbox://DATASET_ID (with LABELBOX_API_KEY and, for a local endpoint, "
        "LABELBOX_ENDPOINT) or sqlite:///PATH; default: an embedded catalog in a temporary folder",
    )
    parser.add_argument("--watch", action="store_true", help="keep running for your own uploads until Ctrl-C")


def run(args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bucket-ingest-demo-")))
        registry = args.registry or f"sqlite:///{workdir / 'catalog.sqlite'}?dataset=demo"
        settings = {name: os.environ[name] for name in PASSED_ON if os.environ.get(name)}
        try:
            Settings.from_env({"INGEST_REGISTRY": registry, **settings})
        except SettingsError as exc:
            print(f"bucket-ingest demo: {exc}", file=sys.stderr)
            return 2
        stack.enter_context(_terminate_as_interrupt())
        try:
            demo = Demo(registry, settings, workdir, watch=args.watch)
            return demo.run(stack)
        except EmulatorError as exc:
            print(f"bucket-ingest demo: {exc}", file=sys.stderr)
            return 1


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the demo as Ctrl-C does: every emulator and function is stopped on the way out."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Demo:
    def __init__(self, registry: str, settings: Mapping[str, str], workdir: Path, *, watch: bool) -> None:
        self.registry = registry
        self.settings = settings
        self.workdir = workdir
        self.watch = watch
        self.uploads: dict[str, Upload] = {}  # by location
        self.pipeline: LocalPipeline | None = None
        self._lock = threading.Lock()

    def say(self, text: str = "") -> None:
        with self._lock:
            print(text, flush=True)

    def run(self, stack: contextlib.ExitStack) -> int:
        moto, gcs, azurite = self.start_clouds(stack)
        log_file = self.workdir / "functions.log"
        config = PipelineConfig(
            self.registry, self.settings, watch_everything=self.watch, prefix="demo", log_file=log_file
        )
        started = time.monotonic()
        pipeline = self.pipeline = stack.enter_context(LocalPipeline(config, moto, gcs, azurite))
        self.say(
            "  functions: Lambda (awslambdaric), Cloud Run (functions-framework), Azure Functions (host stand-in)"
            f" — {time.monotonic() - started:.1f} s"
        )
        self.say(f"  registry:  {self.registry}")
        self.say(f"  log lines of the functions: {log_file} (deleted on exit)\n")
        pipeline.outcomes.subscribe(self.show)

        self.say(f"Uploading {len(SAMPLES)} samples to each of {len(pipeline.targets)} targets:")
        for target in pipeline.targets.values():
            self.say(f"  {target.name:<16} {target.path:<48} {target.bucket}")
        self.say()
        for name in pipeline.targets:
            for sample in SAMPLES:
                upload = pipeline.upload(name, sample.key, sample.data, sample.content_type)
                with self._lock:
                    self.uploads[upload.location] = upload
        locations = set(self.uploads)
        complete = pipeline.outcomes.wait_for(lambda seen: locations <= {o.location for o in seen}, WAIT_S)
        time.sleep(0.2)  # let the last lines print before the summary
        good = self.summary() and complete
        if not complete:
            missing = locations - {o.location for o in pipeline.outcomes.snapshot()}
            self.say(f"\n{len(missing)} uploads got no outcome within {WAIT_S:.0f} s, e.g. {sorted(missing)[:3]}")
        for problem in pipeline.outcomes.problems:
            self.say(f"\nA function refused its configuration: {problem}")
        for error in pipeline.platform_errors():
            self.say(f"\nLast error of {error}")
        self.how_to_upload(moto, gcs, azurite)
        if self.watch:
            self.say("\nWatching for your uploads (Ctrl-C to stop) ...")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                self.say("\nStopping ...")
            return 0
        self.say("\nRun `bucket-ingest demo --watch` to keep it running for your own uploads.")
        return 0 if good else 1

    def start_clouds(self, stack: contextlib.ExitStack) -> tuple[Moto, FakeGcs, Azurite]:
        self.say("Starting the emulated clouds on 127.0.0.1:")
        started = time.monotonic()
        moto = stack.enter_context(Moto())
        self.say(f"  AWS    moto (S3, SQS, EventBridge)      {moto.endpoint_url}")
        publisher = stack.enter_context(PubSubPublisher())
        gcs = stack.enter_context(FakeGcs(publisher))
        self.say(f"  GCP    fake-gcs-server + Pub/Sub        {gcs.endpoint_url} (Pub/Sub gRPC {publisher.host})")
        azurite = stack.enter_context(Azurite())
        self.say(f"  Azure  Azurite (Blob)                   {azurite.blob_endpoint}")
        self.say(f"  ready in {time.monotonic() - started:.1f} s")
        return moto, gcs, azurite

    def show(self, outcome: SeenOutcome) -> None:
        """One line per object outcome, as the function logs it."""
        assert self.pipeline is not None
        with self._lock:
            upload = self.uploads.get(outcome.location)
        target = upload.target if upload else self.pipeline.target_of(outcome.location)
        key = upload.key if upload else outcome.location.split("/", 3)[-1]
        latency = f"{(outcome.at - upload.started) * 1000:6.0f} ms" if upload else "      -  "
        if outcome.status in REGISTERED:
            row = self.row_data(outcome)
            what = f"-> {row}" if row else outcome.global_key
        elif outcome.status == "skipped":
            what = f"{outcome.reason}: {outcome.detail}"
        else:
            what = outcome.detail
        name = target.name if target else outcome.cloud.value
        self.say(f"  {outcome.status:<9} {name:<16} {_short(key)} {latency}  {what}")

    def row_data(self, outcome: SeenOutcome) -> str:
        """The row's URI, when the registry is the embedded catalog (Labelbox is not asked)."""
        if not self.registry.startswith("sqlite://"):
            return ""
        from shared.registries.sqlite import SqliteCatalog

        catalog = SqliteCatalog.from_url(self.registry)
        try:
            row = next((r for r in catalog.rows() if r["global_key"] == outcome.global_key), None)
        finally:
            catalog.close()
        return str(row["row_data"]) if row else ""

    def summary(self) -> bool:
        """The table per target; whether every sample reached the outcome it should."""
        assert self.pipeline is not None
        expected = {s.key: s.expect for s in SAMPLES}
        latencies: dict[str, list[float]] = defaultdict(list)
        skipped: dict[str, Counter[str]] = defaultdict(Counter)
        registered: Counter[str] = Counter()
        failed: Counter[str] = Counter()
        as_expected = True
        first: dict[str, SeenOutcome] = {}
        for seen in self.pipeline.outcomes.snapshot():
            first.setdefault(seen.location, seen)
        for location, upload in self.uploads.items():
            outcome = first.get(location)
            if outcome is None:
                as_expected = False
                continue
            name = upload.target.name
            if outcome.status in REGISTERED:
                registered[name] += 1
                latencies[name].append((outcome.at - upload.started) * 1000)
            elif outcome.status == "skipped":
                skipped[name][outcome.reason] += 1
            else:
                failed[name] += 1
            got = REGISTER if outcome.status in REGISTERED else outcome.reason
            as_expected &= got == expected[upload.key]
        self.say("\nSummary (latency: upload sent → the function logged the row registered)")
        self.say(f"  {'target':<16} {'registered':>10} {'failed':>6} {'p50':>8} {'p99':>8}  skipped (reason: count)")
        for name in self.pipeline.targets:
            values = latencies[name]
            p50 = f"{percentile(values, 50):.0f} ms" if values else "-"
            p99 = f"{percentile(values, 99):.0f} ms" if values else "-"
            reasons = ", ".join(f"{reason}: {count}" for reason, count in sorted(skipped[name].items())) or "-"
            self.say(f"  {name:<16} {registered[name]:>10} {failed[name]:>6} {p50:>8} {p99:>8}  {reasons}")
        self.say(
            "  every sample reached the outcome the default settings give it"
            if as_expected
            else "  NOT every sample reached its expected outcome: see the lines above and the functions' log"
        )
        return as_expected

    def how_to_upload(self, moto: Moto, gcs: FakeGcs, azurite: Azurite) -> None:
        assert self.pipeline is not None
        targets: Mapping[str, Target] = self.pipeline.targets
        aws, eventbridge = targets["aws"].bucket, targets["aws-eventbridge"].bucket
        gcs_bucket, container = targets["gcp"].bucket, targets["azure"].bucket
        self.say("\nUpload more with the usual tools (the buckets above; credentials are the emulators' own):")
        self.say(
            f"  AWS    export AWS_ACCESS_KEY_ID={moto.access_key_id} AWS_SECRET_ACCESS_KEY={moto.secret_access_key}"
            f" AWS_REGION={moto.region}"
        )
        self.say(f'         aws --endpoint-url {moto.endpoint_url} s3 cp photo.jpg "s3://{aws}/my photo.jpg"')
        self.say(f"         (s3://{eventbridge} goes through EventBridge)")
        self.say(f"         python: boto3.client('s3', endpoint_url='{moto.endpoint_url}').upload_file(...)")
        self.say(f"  GCP    export STORAGE_EMULATOR_HOST={gcs.endpoint_url}")
        self.say(
            "         python -c \"from google.cloud import storage; storage.Client(project='demo')"
            f".bucket('{gcs_bucket}').blob('my photo.jpg').upload_from_filename('photo.jpg')\""
        )
        self.say(f'  Azure  export AZURE_STORAGE_CONNECTION_STRING="{azurite.connection_string}"')
        self.say(f'         az storage blob upload -c {container} -n "my photo.jpg" -f photo.jpg')
        self.say(
            "         python: BlobServiceClient.from_connection_string(os.environ['AZURE_STORAGE_CONNECTION_STRING'])"
            f".get_container_client('{container}').upload_blob('my photo.jpg', data)"
        )
        if self.watch:
            self.say("  With --watch, every GCS bucket and Azure container is watched; on AWS, the two buckets above.")


def _short(key: str) -> str:
    """``key`` cut or padded to KEY_WIDTH terminal columns (wide characters, such as CJK, take two)."""
    shown, width = "", 0
    for char in key:
        size = 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
        if width + size > KEY_WIDTH - 1 and len(key) > len(shown) + 1:
            return shown + "…" + " " * (KEY_WIDTH - 1 - width)
        shown, width = shown + char, width + size
    return shown + " " * (KEY_WIDTH - width)
