"""Settings: defaults, every variable's parsing, and errors that name the variable and the fix."""

from __future__ import annotations

import pytest

from shared.media_types import MediaType
from shared.secrets import Secret
from shared.settings import VARIABLES, Choice, DeletePolicy, Settings, SettingsError


def test_defaults_need_no_configuration() -> None:
    s = Settings.from_env({})
    assert s.registry_url.startswith("sqlite:///") and s.registry_url.endswith("bucket-ingest.sqlite")
    assert s.default_dataset == "default"
    assert s.delete_policy is DeletePolicy.IGNORE
    assert s.skip_zero_byte and s.skip_folder_markers
    assert s.unknown_media is Choice.SKIP and s.unservable_keys is Choice.SKIP
    assert s.max_size is None and not s.allowed_buckets and not s.routes
    assert s.labelbox_endpoint == "https://api.labelbox.com/graphql"


def test_every_variable_is_read() -> None:
    env = {
        "INGEST_REGISTRY": "labelbox://ckdataset",
        "INGEST_ROUTES": "raw/**=ckraw; *.mp4=ckvideo\nclips/*/x.png=ckclips",
        "INGEST_INCLUDE": "*.jpg, *.mp4",
        "INGEST_EXCLUDE": "thumbs/**",
        "INGEST_ALLOWED_BUCKETS": "a, b",
        "INGEST_SKIP_ZERO_BYTE": "false",
        "INGEST_SKIP_FOLDER_MARKERS": "no",
        "INGEST_MAX_SIZE": "1.5GiB",
        "INGEST_DELETE_POLICY": "Tag",
        "INGEST_UNKNOWN_MEDIA": "register",
        "INGEST_MEDIA_TYPES": ".tif=image, json=skip",
        "INGEST_UNSERVABLE_KEYS": "register",
        "INGEST_METADATA_SCHEMAS": "size=ck1, etag=ck2",
        "INGEST_TIMEOUT_SECONDS": "30",
        "INGEST_AWS_REGION": "eu-central-1",
        "LABELBOX_API_KEY": "not-a-real-key",
        "LABELBOX_API_KEY_SECRET": "arn:aws:secretsmanager:eu-central-1:123456789012:secret:lb",
        "LABELBOX_ENDPOINT": "http://127.0.0.1:9/graphql",
    }
    assert set(env) == set(VARIABLES), "this test must cover every documented variable"
    s = Settings.from_env(env)
    assert s.default_dataset == "ckdataset"
    assert [(r.glob.pattern, r.dataset) for r in s.routes] == [
        ("raw/**", "ckraw"),
        ("*.mp4", "ckvideo"),
        ("clips/*/x.png", "ckclips"),
    ]
    assert [g.pattern for g in s.include] == ["*.jpg", "*.mp4"]
    assert [g.pattern for g in s.exclude] == ["thumbs/**"]
    assert s.allowed_buckets == {"a", "b"}
    assert not s.skip_zero_byte and not s.skip_folder_markers
    assert s.max_size == int(1.5 * 2**30)
    assert s.delete_policy is DeletePolicy.TAG
    assert s.unknown_media is Choice.REGISTER and s.unservable_keys is Choice.REGISTER
    assert s.media_types == {"tif": MediaType.IMAGE, "json": None}
    assert s.metadata_schemas == {"size": "ck1", "etag": "ck2"}
    assert s.timeout_seconds == 30.0
    assert s.aws_region == "eu-central-1"
    assert s.api_key == Secret("not-a-real-key")
    assert s.api_key_secret and s.labelbox_endpoint == "http://127.0.0.1:9/graphql"


def test_region_falls_back_to_the_platforms() -> None:
    assert Settings.from_env({"AWS_REGION": "ap-south-1"}).aws_region == "ap-south-1"
    assert Settings.from_env({"AWS_DEFAULT_REGION": "sa-east-1"}).aws_region == "sa-east-1"


def test_sqlite_dataset_from_the_url() -> None:
    s = Settings.from_env({"INGEST_REGISTRY": "sqlite:///tmp/x.sqlite?dataset=photos"})
    assert s.default_dataset == "photos"


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"INGEST_REGISTRY": "postgres://x"}, ["INGEST_REGISTRY"]),
        ({"INGEST_REGISTRY": "labelbox://ds"}, ["LABELBOX_API_KEY_SECRET"]),
        ({"INGEST_MAX_SIZE": "big"}, ["INGEST_MAX_SIZE"]),
        ({"INGEST_DELETE_POLICY": "purge"}, ["INGEST_DELETE_POLICY"]),
        ({"INGEST_SKIP_ZERO_BYTE": "maybe"}, ["INGEST_SKIP_ZERO_BYTE"]),
        ({"INGEST_ROUTES": "photos/**"}, ["INGEST_ROUTES"]),
        ({"INGEST_MEDIA_TYPES": "tif=PICTURE"}, ["INGEST_MEDIA_TYPES"]),
        ({"INGEST_METADATA_SCHEMAS": "colour=ck1"}, ["INGEST_METADATA_SCHEMAS"]),
        ({"INGEST_TIMEOUT_SECONDS": "-4"}, ["INGEST_TIMEOUT_SECONDS"]),
        ({"LABELBOX_ENDPOINT": "api.labelbox.com"}, ["LABELBOX_ENDPOINT"]),
        ({"INGEST_MAX_SIZE": "x", "INGEST_DELETE_POLICY": "y"}, ["INGEST_MAX_SIZE", "INGEST_DELETE_POLICY"]),
    ],
)
def test_errors_name_every_bad_variable(env: dict[str, str], names: list[str]) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env)
    message = str(raised.value)
    for name in names:
        assert f"{name}:" in message
    assert "Traceback" not in message


def test_the_api_key_never_shows() -> None:
    s = Settings.from_env({"INGEST_REGISTRY": "labelbox://ds", "LABELBOX_API_KEY": "sk-very-secret-123"})
    assert "sk-very-secret-123" not in repr(s) and "sk-very-secret-123" not in str(s)
    assert s.api_key is not None and s.api_key.reveal() == "sk-very-secret-123"
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(s.api_key)
