"""The local pipeline: the three clouds' event plumbing over the emulators, driving the real functions.

``LocalPipeline`` (in ``local``) puts it together; the parts, one module per platform, are usable alone:
``aws`` (Lambda's SQS event source mapping), ``gcp`` (an Eventarc trigger), ``azure`` (Event Grid for Azurite),
``functions`` (the functions' processes), ``retry`` (push delivery with the platforms' retries), ``outcomes``
(what the functions log, per object).
"""

from bucket_ingest.pipeline.local import TARGETS, LocalPipeline, PipelineConfig, Target, Upload
from bucket_ingest.pipeline.outcomes import OutcomeLog, SeenOutcome

__all__ = ["TARGETS", "LocalPipeline", "OutcomeLog", "PipelineConfig", "SeenOutcome", "Target", "Upload"]
