"""Helpers for the infrastructure and packaging tests: the real tools, the parsed template and modules, the zips.

- The tools: ``sam``, ``cfn-lint`` and ``checkov`` from ``.tools/bin`` (``make tools``), ``terraform`` from PATH with
  the local filesystem mirror of the ``hashicorp/aws`` provider (``provider_mirror``), a Python 3.12 for
  ``sam build`` and for importing the Lambda and Cloud Functions zips. A missing tool skips its test with the
  command that installs it.
- ``template()``: template.yaml with CloudFormation's short tags kept as their long form (``{"Ref": ...}``).
- ``parse_module(folder)``: every ``.tf`` file of a folder through python-hcl2, blocks merged by kind.
- ``packages`` (``packages_fixture``): the three zips, built once per session into a temporary folder.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml

from bucket_ingest.package import TARGETS, build_zip

ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = ROOT / ".tools" / "bin"
INFRA = ROOT / "infra"
CLOUDS = ("aws", "gcp", "azure")
# Where a filesystem mirror of Terraform providers may live (the machine image puts one at /opt/tf-plugins)
MIRROR_ENV = "BUCKET_INGEST_TF_PLUGINS"
MIRROR_GLOBS = ("/opt/tf-plugins", "/*/tf-plugins", "/*/*/tf-plugins")
AWS_PROVIDER = Path("registry.terraform.io/hashicorp/aws")


# ------------------------------------------------------------------------------------------------------ tools


def tool(name: str) -> Path:
    """An infrastructure tool installed by `make tools`, or skip the test saying how to get it."""
    path = TOOLS_BIN / name
    if not path.exists():
        pytest.skip(f"{name} is not installed in {TOOLS_BIN}: run `make tools` (`make test` does)")
    return path


def run(
    command: Sequence[str | Path], *, cwd: Path = ROOT, env: Mapping[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run a tool to completion; the caller reads returncode, stdout and stderr."""
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=dict(env) if env is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def output(result: subprocess.CompletedProcess[str]) -> str:
    """A finished command's output, for assertion messages."""
    return f"exit {result.returncode}\n--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"


@cache
def python312() -> Path | None:
    """A Python 3.12 interpreter (Lambda's and Cloud Functions' version): on PATH, or one of pyenv's."""
    candidates = [shutil.which("python3.12")]
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/3.12*/bin/python3.12"), reverse=True)
    for candidate in filter(None, candidates):
        # pyenv's shim exists even where 3.12 is not selected, and then fails: ask it
        if run([candidate, "-c", "import sys; assert sys.version_info[:2] == (3, 12)"]).returncode == 0:
            return Path(candidate)
    return None


def require_python312() -> Path:
    python = python312()
    if python is None:
        pytest.skip("no Python 3.12 interpreter found (on PATH or in pyenv's versions folder)")
    return python


def sam_env() -> dict[str, str]:
    """The environment `sam` runs in: Python 3.12 first on PATH (sam build checks the runtime), no telemetry."""
    python = require_python312()
    return {
        **os.environ,
        "PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "SAM_CLI_TELEMETRY": "0",
    }


def terraform() -> Path:
    found = shutil.which("terraform")
    if found is None:
        pytest.skip("terraform is not on PATH (no PyPI, npm or apt package provides a current one)")
    return Path(found)


@cache
def provider_mirror() -> Path | None:
    """A filesystem mirror holding hashicorp/aws (the registry cannot be reached from here), or None."""
    candidates = [os.environ[MIRROR_ENV]] if os.environ.get(MIRROR_ENV) else []
    for pattern in MIRROR_GLOBS:
        candidates += sorted(glob.glob(pattern))
    return next((Path(c) for c in candidates if (Path(c) / AWS_PROVIDER).is_dir()), None)


def require_provider_mirror() -> Path:
    mirror = provider_mirror()
    if mirror is None:
        pytest.skip(
            f"no filesystem mirror of the hashicorp/aws provider ({', '.join(MIRROR_GLOBS)}, or set {MIRROR_ENV}): "
            "terraform init cannot reach the registry from here"
        )
    return mirror


def terraform_env(folder: Path, mirror: Path) -> dict[str, str]:
    """Terraform's environment for one test: a CLI configuration of its own that installs providers from the
    mirror only (the machine's TF_CLI_CONFIG_FILE names a missing file), no prompts, no version check."""
    config = folder / "terraform.tfrc"
    config.write_text(
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path    = "{mirror}"\n    include = ["registry.terraform.io/*/*"]\n  }}\n'
        '  direct {\n    exclude = ["registry.terraform.io/*/*"]\n  }\n'
        "}\n",
        encoding="utf-8",
    )
    return {
        **os.environ,
        "TF_CLI_CONFIG_FILE": str(config),
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
        "CHECKPOINT_DISABLE": "1",
    }


def copy_module(cloud: str, into: Path) -> Path:
    """A copy of infra/<cloud> (examples included) where terraform may write .terraform and state."""
    destination = into / cloud
    shutil.copytree(
        INFRA / cloud,
        destination,
        ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate", "*.tfstate.*"),
    )
    return destination


# ----------------------------------------------------------------------------------------------- templates


class _CloudFormationLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags in their long form: ``!Ref X`` → ``{"Ref": "X"}``, ``!If [...]`` →
    ``{"Fn::If": [...]}``."""


def _short_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    return {suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _short_tag)


@cache
def template() -> dict[str, Any]:
    with (ROOT / "template.yaml").open(encoding="utf-8") as stream:
        document: dict[str, Any] = yaml.load(stream, Loader=_CloudFormationLoader)  # noqa: S506 (SafeLoader subclass)
    return document


@cache
def parse_module(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """The blocks of every .tf file in ``folder`` (not its subfolders), by kind: resource, variable, locals, ..."""
    merged: dict[str, list[dict[str, Any]]] = {}
    options = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False)
    for path in sorted(folder.glob("*.tf")):
        with path.open(encoding="utf-8") as stream:
            for kind, blocks in hcl2.load(stream, serialization_options=options).items():
                merged.setdefault(kind, []).extend(blocks if isinstance(blocks, list) else [blocks])
    return merged


def blocks(module: Mapping[str, list[dict[str, Any]]], kind: str, type_: str) -> dict[str, dict[str, Any]]:
    """The ``kind`` blocks (resource, data) of one type, by name: ``blocks(m, "resource", "aws_sqs_queue")``."""
    found: dict[str, dict[str, Any]] = {}
    for block in module.get(kind, []):
        for name, body in block.get(type_, {}).items():
            found[name] = body
    return found


def locals_of(module: Mapping[str, list[dict[str, Any]]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in module.get("locals", []):
        merged.update(block)
    return merged


def variable_default(module: Mapping[str, list[dict[str, Any]]], name: str) -> Any:
    for block in module.get("variable", []):
        if name in block:
            return block[name].get("default")
    raise KeyError(f"variable {name!r} is not declared")


# -------------------------------------------------------------------------------------------------- packages


@pytest.fixture(scope="session", name="packages")
def packages_fixture(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """<cloud> → its deployable zip, built the way `make package` builds it, once per session: each test module
    that imports this fixture gets its own copy of it, so the zips are kept in the session's base folder."""
    out = tmp_path_factory.getbasetemp() / "packages"
    if not out.is_dir():
        partial = tmp_path_factory.mktemp("packages-partial")
        for cloud in CLOUDS:
            build_zip(TARGETS[cloud], partial)
        partial.rename(out)
    return {cloud: out / f"{cloud}.zip" for cloud in CLOUDS}


def unpack(archive: Path, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(into)
    return into


def top_level(archive: Path) -> set[str]:
    """The names at the root of a zip (files and folders)."""
    with zipfile.ZipFile(archive) as opened:
        return {name.split("/", 1)[0] for name in opened.namelist()}


def names(archive: Path) -> Iterator[str]:
    with zipfile.ZipFile(archive) as opened:
        yield from opened.namelist()
