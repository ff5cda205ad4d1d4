"""template.yaml under the real AWS tools: `sam validate --lint`, cfn-lint, and `sam build` (no container)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import yaml

from tests.support.infra import (
    ROOT,
    output,
    packages_fixture,  # noqa: F401 (fixture)
    run,
    sam_env,
    tool,
)

# The ones sam build writes no matter what: its copy of the template and build metadata.
BUILD_ROOT_FILES = {"template.yaml", "build.toml"}


def test_sam_validate_with_lint_is_clean() -> None:
    result = run(
        [tool("sam"), "validate", "--lint", "--template-file", ROOT / "template.yaml", "--region", "us-east-1"],
        env=sam_env(),
    )
    assert result.returncode == 0, output(result)
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_cfn_lint_is_clean() -> None:
    result = run([tool("cfn-lint"), ROOT / "template.yaml"])
    assert result.returncode == 0, output(result)


def test_cfn_lint_catches_a_broken_template(tmp_path: Path) -> None:
    """The lint above reads this template: the same one with a misspelt function property fails it."""
    broken = tmp_path / "template.yaml"
    text = (ROOT / "template.yaml").read_text(encoding="utf-8")
    assert text.count("Handler: handlers.aws.lambda_handler") == 1
    broken.write_text(text.replace("Handler: handlers.aws", "Handlr: handlers.aws"), encoding="utf-8")
    result = run([tool("cfn-lint"), broken])
    assert result.returncode != 0
    assert "Handlr" in result.stdout


def test_sam_build_packs_exactly_the_aws_zip(tmp_path: Path, packages: dict[str, Path]) -> None:
    """No container, Python 3.12 on PATH; the function's build folder holds handlers/, shared/ and the arm64
    dependencies (the tree of build/aws.zip), not the checkout: no tests, infra, dev code, .venv or node_modules."""
    build = tmp_path / "build"
    result = run(
        [tool("sam"), "build", "--template-file", ROOT / "template.yaml", "--build-dir", build],
        env=sam_env(),
        timeout=600,
    )
    assert result.returncode == 0, output(result)

    function = build / "IngestFunction"
    built = {p.relative_to(function).as_posix() for p in function.rglob("*") if p.is_file()}
    with zipfile.ZipFile(packages["aws"]) as archive:
        assert built == set(archive.namelist())
    assert {p.name for p in build.iterdir()} <= BUILD_ROOT_FILES | {"IngestFunction"}

    size = sum(p.stat().st_size for p in function.rglob("*") if p.is_file())
    assert size < 20e6, f"{size / 1e6:.1f} MB"

    resources = yaml.safe_load(
        (build / "template.yaml").read_text(encoding="utf-8").replace("!", "")  # the short tags are not read here
    )["Resources"]
    assert resources["IngestFunction"]["Properties"]["CodeUri"] == "IngestFunction"
    assert resources["IngestFunction"]["Properties"]["Handler"] == "handlers.aws.lambda_handler"
