"""`python -m bucket_ingest.package [aws|gcp|azure ...]`: one deployable zip per cloud under build/.

Each zip holds only what its platform runs: the ``handlers`` and ``shared`` packages, the cloud's entry files
and its runtime dependencies, resolved for the platform that runs them rather than for this machine:

- ``aws.zip``: Lambda ``python3.12`` on arm64. Dependencies are installed at the zip root from manylinux aarch64
  wheels; boto3 is left out because the Lambda runtime provides it and the function imports it only to fetch the
  key or check a delete (https://docs.aws.amazon.com/lambda/latest/dg/python-package.html).
- ``gcp.zip``: Cloud Functions 2nd gen ``python312``. A root ``main.py`` re-exports ``handlers.gcp``'s entry points
  (the default source file) beside a ``requirements.txt`` pinned to the exact versions resolved here: Google's
  buildpack installs it during deployment, for its own platform, so nothing is vendored
  (https://cloud.google.com/functions/docs/writing/specifying-dependencies-python).
- ``azure.zip``: Functions Flex Consumption, Python 3.11, v2 programming model: ``function_app.py`` and
  ``host.json`` at the root and the dependencies under ``.python_packages/lib/site-packages``, the layout that runs
  without a remote build (https://learn.microsoft.com/azure/azure-functions/functions-reference-python#folder-structure).

``--into DIR`` writes one cloud's tree unzipped into DIR; ``sam build`` uses it (infra/sam/Makefile), so SAM
deploys exactly what this module packs. Zips are reproducible: sorted entries, fixed timestamps and modes, no
bytecode, so a rebuild from the same inputs gives the same bytes (and Terraform redeploys only real changes).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("handlers", "shared")  # the code every zip carries
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
# Never packed: bytecode, which is built for this interpreter rather than the platform's.
SKIPPED_NAMES = frozenset({"__pycache__"})
SKIPPED_SUFFIXES = (".pyc", ".pyo")
GCP_MAIN = '''"""Cloud Functions' default source file: the entry points live in handlers/gcp.py."""

from handlers.gcp import on_pubsub_push, on_storage_event

__all__ = ["on_pubsub_push", "on_storage_event"]
'''


class PackageError(Exception):
    """Packaging cannot go on; the message says what is missing or what pip said."""


@dataclass(frozen=True, slots=True)
class Target:
    """How one cloud's zip is made."""

    cloud: str
    entry_module: str  # must exist before anything is packed
    arch: str  # pip --platform tags: manylinux2014 (glibc 2.17, which pip widens to 2010 and 1) and manylinux_2_28
    python_version: str
    vendor_dir: str | None  # where dependencies go inside the zip ("" = its root); None = a pinned requirements.txt
    copied: dict[str, str] = field(default_factory=dict)  # path in zip → path in the repository
    generated: dict[str, str] = field(default_factory=dict)  # path in zip → file content

    @property
    def requirements(self) -> Path:
        return ROOT / "handlers" / f"requirements-{self.cloud}.txt"


TARGETS: dict[str, Target] = {
    "aws": Target(
        cloud="aws",
        entry_module="handlers/aws.py",
        arch="aarch64",
        python_version="3.12",
        vendor_dir="",
    ),
    "gcp": Target(
        cloud="gcp",
        entry_module="handlers/gcp.py",
        arch="x86_64",
        python_version="3.12",
        vendor_dir=None,
        generated={"main.py": GCP_MAIN},
    ),
    "azure": Target(
        cloud="azure",
        entry_module="function_app.py",
        arch="x86_64",
        python_version="3.11",
        vendor_dir=".python_packages/lib/site-packages",
        copied={
            "function_app.py": "function_app.py",
            "host.json": "infra/azure/host.json",
            "requirements.txt": "handlers/requirements-azure.txt",  # read when a remote build is asked for
        },
    ),
}


def stage(target: Target, into: Path) -> None:
    """Lay out ``target``'s deployable tree in the (empty or missing) folder ``into``."""
    for needed in (ROOT / target.entry_module, *(ROOT / c for c in target.copied.values()), target.requirements):
        if not needed.is_file():
            raise PackageError(f"{target.cloud}: {_shown(needed)} is missing; it is part of the {target.cloud} zip")
    into.mkdir(parents=True, exist_ok=True)
    for package in PACKAGES:
        _copy_tree(ROOT / package, into / package)
    for inside, source in target.copied.items():
        shutil.copyfile(ROOT / source, into / inside)
    for inside, content in target.generated.items():
        (into / inside).write_text(content, encoding="utf-8")
    if target.vendor_dir is None:
        pins = _resolve(target)
        (into / "requirements.txt").write_text(
            f"# Resolved by `make package` for Python {target.python_version} on {target.arch} Linux; the platform's "
            "build installs these.\n" + "".join(f"{name}=={version}\n" for name, version in pins),
            encoding="utf-8",
        )
    else:
        _install(target, into / target.vendor_dir)


def build_zip(target: Target, out_dir: Path) -> Path:
    """Write ``out_dir/<cloud>.zip`` and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"bucket-ingest-{target.cloud}-") as scratch:
        tree = Path(scratch) / "tree"
        stage(target, tree)
        zip_path = out_dir / f"{target.cloud}.zip"
        partial = zip_path.with_suffix(".zip.partial")
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
            for path in sorted(_files(tree), key=lambda p: p.relative_to(tree).as_posix()):
                info = zipfile.ZipInfo(path.relative_to(tree).as_posix(), date_time=ZIP_TIMESTAMP)
                info.external_attr = 0o100644 << 16  # regular file, rw-r--r--: readable by every platform's user
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes(), compresslevel=9)
        partial.replace(zip_path)
    return zip_path


def _copy_tree(source: Path, destination: Path) -> None:
    def ignore(folder: str, names: list[str]) -> set[str]:
        # the per-cloud requirement lists reach the zips as installed dependencies, not as files
        return {n for n in names if _skipped(n) or (Path(folder).name == "handlers" and n.startswith("requirements-"))}

    shutil.copytree(source, destination, ignore=ignore, dirs_exist_ok=True)


def _shown(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


def _skipped(name: str) -> bool:
    return name in SKIPPED_NAMES or name.endswith(SKIPPED_SUFFIXES)


def _files(tree: Path) -> Iterator[Path]:
    for path in tree.rglob("*"):
        if path.is_file() and not any(_skipped(part) for part in path.relative_to(tree).parts):
            yield path


def _pip_target_options(target: Target) -> list[str]:
    # Lambda (Amazon Linux 2023), Cloud Functions (Ubuntu 22.04) and Flex Consumption (Debian 12) have glibc
    # 2.34 or newer, so wheels up to manylinux_2_28 run on all of them.
    return [
        *("--platform", f"manylinux2014_{target.arch}"),
        *("--platform", f"manylinux_2_28_{target.arch}"),
        "--implementation",
        "cp",
        "--python-version",
        target.python_version,
        "--only-binary=:all:",  # a wheel for the platform or nothing: never an sdist built for this machine
        "-r",
        str(target.requirements),
    ]


def _pip(target: Target, arguments: list[str]) -> None:
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *arguments]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        said = (result.stderr or result.stdout).strip().splitlines()
        errors = [line for line in said if "ERROR" in line] or said[-5:]
        raise PackageError(
            f"{target.cloud}: pip could not install {_shown(target.requirements)} for Python "
            f"{target.python_version} on {target.arch} Linux: " + " | ".join(errors)
        )


def _install(target: Target, into: Path) -> None:
    _pip(target, ["--target", str(into), "--no-compile", "--no-warn-script-location", *_pip_target_options(target)])
    # console scripts: written for this machine's interpreter path, and no platform runs them
    shutil.rmtree(into / "bin", ignore_errors=True)


def _resolve(target: Target) -> list[tuple[str, str]]:
    """The exact (name, version) set pip would install for the target, without installing it."""
    with tempfile.TemporaryDirectory(prefix="bucket-ingest-resolve-") as scratch:
        report = Path(scratch) / "report.json"
        _pip(target, ["--dry-run", "--ignore-installed", "--report", str(report), *_pip_target_options(target)])
        installs = json.loads(report.read_text(encoding="utf-8"))["install"]
    return sorted((item["metadata"]["name"], item["metadata"]["version"]) for item in installs)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bucket_ingest.package", description=__doc__.split("\n", 1)[0])
    parser.add_argument("clouds", nargs="*", metavar="CLOUD", help=f"{', '.join(TARGETS)} (default: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "build", help="folder for the zips (default: build/)")
    parser.add_argument("--into", type=Path, help="write one cloud's tree unzipped into this folder (sam build)")
    args = parser.parse_args(argv)
    clouds = list(dict.fromkeys(args.clouds or TARGETS))
    if unknown := [c for c in clouds if c not in TARGETS]:
        parser.error(f"unknown cloud {', '.join(unknown)}: choose from {', '.join(TARGETS)}")
    try:
        if args.into is not None:
            if len(clouds) != 1:
                parser.error("--into takes exactly one cloud")
            stage(TARGETS[clouds[0]], args.into)
            print(f"{clouds[0]}: {args.into}")
            return 0
        for cloud in clouds:
            started = time.perf_counter()
            zip_path = build_zip(TARGETS[cloud], args.out)
            with zipfile.ZipFile(zip_path) as archive:
                entries = archive.infolist()
            print(
                f"{zip_path}: {zip_path.stat().st_size / 1e6:.1f} MB, {len(entries)} files, "
                f"{sum(e.file_size for e in entries) / 1e6:.1f} MB unpacked, {time.perf_counter() - started:.1f} s"
            )
    except PackageError as exc:
        print(f"bucket_ingest.package: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
