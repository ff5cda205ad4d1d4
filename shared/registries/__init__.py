"""Registries behind one interface, chosen by the registry URL (INGEST_REGISTRY)."""

from __future__ import annotations

from shared.registries.base import Registry, RowResult, RowStatus
from shared.settings import Settings

__all__ = ["Registry", "RowResult", "RowStatus", "open_registry"]


def open_registry(settings: Settings) -> Registry:
    """The registry the settings name; imports only the one in use (the Labelbox client stays off the SQLite path)."""
    url = settings.registry_url
    if url.startswith("sqlite://"):
        from shared.registries.sqlite import SqliteCatalog

        return SqliteCatalog.from_url(url)
    if url.startswith("labelbox://"):
        from shared.registries.labelbox import LabelboxRegistry

        return LabelboxRegistry.from_settings(settings)
    raise ValueError(f"INGEST_REGISTRY: {url!r} is not a registry URL: use labelbox://DATASET_ID or sqlite:///PATH")
