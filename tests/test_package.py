"""`make package` (bucket_ingest.package): one zip per cloud with only what its platform runs, built for that
platform, reproducible, and importable from an empty folder with nothing else on the path."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import sys
import zipfile
from pathlib import Path

import pytest

from bucket_ingest.package import TARGETS, PackageError, build_zip, stage
from tests.support.infra import (
    ROOT,
    names,
    output,
    packages_fixture,  # noqa: F401 (fixture)
    require_python312,
    run,
    top_level,
    unpack,
)

# What may sit at the root of each zip besides the dependencies (AWS keeps those at the root too).
ROOTS = {
    "aws": {"handlers", "shared"},
    "gcp": {"handlers", "shared", "main.py", "requirements.txt"},
    "azure": {"handlers", "shared", "function_app.py", "host.json", "requirements.txt", ".python_packages"},
}
# Never deployed: tests, infrastructure, dev tooling, and boto3 (the Lambda runtime provides it).
FORBIDDEN = {"tests", "infra", "bucket_ingest", "benchmarks", "scripts", "template.yaml", "boto3", "botocore"}
# Imports the entry point from the unpacked zip with nothing else on the path (-I -S: no site-packages, no
# PYTHONPATH, no current folder), then names every loaded module that came from anywhere but there or the stdlib.
PROBE = """
import importlib, json, sys, sysconfig
roots, module, attributes = json.loads(sys.argv[1])
sys.path[:0] = roots
loaded = importlib.import_module(module)
stdlib = (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"])
outside = sorted(
    name for name, m in list(sys.modules.items())
    if getattr(m, "__file__", None) and not m.__file__.startswith((*roots, *stdlib))
)
print(json.dumps({
    "callable": {a: callable(getattr(loaded, a, None)) for a in attributes},
    "outside": outside,
    "boto3": "boto3" in sys.modules,
    "extra": eval(sys.argv[2]) if len(sys.argv) > 2 else None,
}))
"""


def repo_code() -> set[str]:
    """handlers/ and shared/ as the zips should carry them: every file but bytecode and requirement lists."""
    found = set()
    for package in ("handlers", "shared"):
        for path in (ROOT / package).rglob("*"):
            relative = path.relative_to(ROOT).as_posix()
            if path.is_file() and "__pycache__" not in relative and not relative.endswith(".pyc"):
                found.add(relative)
    return {name for name in found if not re.fullmatch(r"handlers/requirements-\w+\.txt", name)}


def distribution_roots(archive: Path, site: str) -> set[str]:
    """Top-level names the installed distributions own (from their RECORD files) under ``site`` in the zip."""
    owned = set()
    with zipfile.ZipFile(archive) as opened:
        for name in opened.namelist():
            if name.startswith(site) and name.endswith(".dist-info/RECORD"):
                for line in opened.read(name).decode("utf-8").splitlines():
                    owned.add(line.split(",", 1)[0].split("/", 1)[0])
    return owned


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_each_zip_holds_only_the_code_its_entry_files_and_dependencies(cloud: str, packages: dict[str, Path]) -> None:
    archive = packages[cloud]
    roots = top_level(archive)
    entries = list(names(archive))

    if cloud == "aws":  # dependencies at the root: each must belong to an installed distribution
        assert roots - ROOTS["aws"] <= distribution_roots(archive, ""), roots - ROOTS["aws"]
        assert "aws_lambda_powertools" in roots
    else:
        assert roots == ROOTS[cloud]
    assert not roots & FORBIDDEN
    assert not [n for n in entries if "__pycache__" in n or n.endswith((".pyc", ".pyo"))]
    assert {n for n in entries if n.startswith(("handlers/", "shared/"))} == repo_code()


def test_the_gcp_zip_re_exports_the_entry_points_and_pins_what_the_build_installs(packages: dict[str, Path]) -> None:
    with zipfile.ZipFile(packages["gcp"]) as archive:
        main = archive.read("main.py").decode("utf-8")
        pins = [line for line in archive.read("requirements.txt").decode("utf-8").splitlines() if line[:1].isalnum()]
    assert "from handlers.gcp import on_pubsub_push, on_storage_event" in main
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.+\-]+", pin) for pin in pins), pins
    pinned = {pin.split("==")[0].lower().replace("_", "-") for pin in pins}
    wanted = (ROOT / "handlers" / "requirements-gcp.txt").read_text(encoding="utf-8").splitlines()
    for requirement in (line for line in wanted if line[:1].isalnum()):
        assert re.split(r"[<>=!~ ]", requirement)[0].lower() in pinned


def test_the_azure_zip_follows_the_python_v2_layout(packages: dict[str, Path]) -> None:
    with zipfile.ZipFile(packages["azure"]) as archive:
        host = json.loads(archive.read("host.json"))
        site = {n for n in archive.namelist() if n.startswith(".python_packages/lib/site-packages/")}
    assert host["version"] == "2.0"
    assert host["extensionBundle"]["id"] == "Microsoft.Azure.Functions.ExtensionBundle"  # the Event Grid binding
    assert ".python_packages/lib/site-packages/azure/functions/__init__.py" in site


# python tag, abi tag, platform tag of each wheel's own WHEEL file
WHEEL_TAG = re.compile(r"^Tag: (\S+)-(\S+)-(\S+)$", re.MULTILINE)


@pytest.mark.parametrize(("cloud", "site"), [("aws", ""), ("azure", ".python_packages/lib/site-packages/")])
def test_vendored_dependencies_are_wheels_for_the_platform_that_runs_them(
    cloud: str, site: str, packages: dict[str, Path]
) -> None:
    target = TARGETS[cloud]
    python = "cp" + target.python_version.replace(".", "")
    with zipfile.ZipFile(packages[cloud]) as archive:
        wheels = {n: archive.read(n).decode("utf-8") for n in archive.namelist() if n.endswith(".dist-info/WHEEL")}
    assert wheels, f"no installed distribution in the {cloud} zip"
    for name, text in wheels.items():
        tags = WHEEL_TAG.findall(text)
        assert tags, name
        for python_tag, abi, platform in tags:
            assert platform == "any" or platform.endswith(f"_{target.arch}"), (name, platform)
            portable = python_tag.startswith(("py3", "py2.py3")) or abi == "abi3"
            assert portable or python_tag == python, (name, python_tag)


def test_zips_are_reproducible(packages: dict[str, Path], tmp_path: Path) -> None:
    for cloud, first in packages.items():
        again = build_zip(TARGETS[cloud], tmp_path / cloud)
        assert hashlib.sha256(again.read_bytes()).digest() == hashlib.sha256(first.read_bytes()).digest(), cloud


def probe(python: Path | str, roots: list[Path], module: str, attributes: list[str], extra: str = "") -> dict:
    command = [str(python), "-I", "-S", "-c", PROBE, json.dumps([[str(r) for r in roots], module, attributes])]
    result = run([*command, *([extra] if extra else [])], cwd=roots[0])
    assert result.returncode == 0, output(result)
    answer: dict = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def test_the_aws_zip_imports_its_handler_alone_on_python_3_12(packages: dict[str, Path], tmp_path: Path) -> None:
    root = unpack(packages["aws"], tmp_path / "aws")
    answer = probe(require_python312(), [root], "handlers.aws", ["lambda_handler"])
    assert answer["callable"] == {"lambda_handler": True}
    assert answer["outside"] == []
    assert answer["boto3"] is False  # the runtime provides it, and only a secret fetch or a delete check needs it


def test_the_gcp_zip_imports_main_once_its_requirements_installed(packages: dict[str, Path], tmp_path: Path) -> None:
    python = require_python312()
    root = unpack(packages["gcp"], tmp_path / "gcp")
    deps = tmp_path / "gcp-deps"  # what Google's buildpack does with requirements.txt
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--only-binary=:all:"]
    installed = run([*pip, "--target", deps, "-r", root / "requirements.txt"], timeout=600)
    assert installed.returncode == 0, output(installed)
    registry = "__import__('functions_framework._function_registry').__dict__['_function_registry'].REGISTRY_MAP"
    answer = probe(python, [root, deps], "main", ["on_storage_event", "on_pubsub_push"], extra=registry)
    assert answer["callable"] == {"on_storage_event": True, "on_pubsub_push": True}
    assert answer["outside"] == []
    # the signatures Cloud Functions serves them with: an Eventarc CloudEvent, and HTTP for Pub/Sub push
    assert answer["extra"] == {"on_storage_event": "cloudevent", "on_pubsub_push": "http"}


def test_the_azure_zip_indexes_its_function_from_the_app_root(packages: dict[str, Path], tmp_path: Path) -> None:
    assert TARGETS["azure"].python_version == f"{sys.version_info.major}.{sys.version_info.minor}"
    root = unpack(packages["azure"], tmp_path / "azure")
    site = root / ".python_packages" / "lib" / "site-packages"  # where the Functions worker looks
    functions = "[(f.get_function_name(), [b.type for b in f.get_bindings()]) for f in loaded.app.get_functions()]"
    answer = probe(sys.executable, [root, site], "function_app", ["on_blob_event"], extra=functions)
    assert answer["outside"] == []
    assert answer["extra"] == [["on_blob_event", ["eventGridTrigger"]]]


def test_the_command_writes_a_zip_or_an_unpacked_tree(tmp_path: Path) -> None:
    zipped = run([sys.executable, "-m", "bucket_ingest.package", "aws", "--out", tmp_path / "out"])
    assert zipped.returncode == 0, output(zipped)
    assert (tmp_path / "out" / "aws.zip").is_file()
    assert "aws.zip" in zipped.stdout and "MB" in zipped.stdout

    tree = run([sys.executable, "-m", "bucket_ingest.package", "aws", "--into", tmp_path / "tree"])
    assert tree.returncode == 0, output(tree)
    assert {p.name for p in (tmp_path / "tree").iterdir()} >= {"handlers", "shared", "aws_lambda_powertools"}


def test_bad_requests_are_named(tmp_path: Path) -> None:
    unknown = run([sys.executable, "-m", "bucket_ingest.package", "aws", "oracle"])
    assert unknown.returncode == 2
    assert "unknown cloud oracle" in unknown.stderr

    two = run([sys.executable, "-m", "bucket_ingest.package", "aws", "gcp", "--into", tmp_path / "x"])
    assert two.returncode == 2
    assert "--into takes exactly one cloud" in two.stderr

    missing = dataclasses.replace(TARGETS["aws"], entry_module="handlers/nowhere.py")
    with pytest.raises(PackageError, match=r"handlers/nowhere\.py is missing"):
        stage(missing, tmp_path / "missing")


def test_pip_failures_say_what_could_not_be_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = tmp_path / "requirements-aws.txt"
    wrong.write_text("aws-lambda-powertools>=3.0,<3.0\n", encoding="utf-8")  # no version can satisfy it
    monkeypatch.setattr(type(TARGETS["aws"]), "requirements", property(lambda self: wrong))
    with pytest.raises(PackageError, match=r"pip could not install .* for Python 3\.12 on aarch64 Linux"):
        stage(TARGETS["aws"], tmp_path / "tree")
