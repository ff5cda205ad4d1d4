"""Azure Functions entry point (Python v2 programming model): the host indexes ``app`` in this file at start-up.

https://learn.microsoft.com/azure/azure-functions/functions-reference-python . The function body lives in
``handlers/azure.py``; this file only declares the trigger.
"""

# No "from __future__ import annotations": the Python worker checks each parameter's annotation, a real type,
# against what its binding accepts.
import azure.functions as func

from handlers import azure

app = func.FunctionApp()


@app.function_name(name="on_blob_event")
@app.event_grid_trigger(arg_name="event")
def on_blob_event(event: func.EventGridEvent) -> None:
    """Event Grid delivers Microsoft.Storage.BlobCreated / BlobDeleted here, one event per invocation, in the
    Event Grid or CloudEvents schema (the binding hands over a func.CloudEvent for the latter)."""
    azure.handle([event])
