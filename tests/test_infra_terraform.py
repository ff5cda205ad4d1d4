"""The Terraform modules under the real terraform: fmt everywhere; init + validate for AWS (the only provider in
the local mirror); python-hcl2 parses every module and example, which all follow the same layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.infra import (
    CLOUDS,
    INFRA,
    copy_module,
    output,
    parse_module,
    require_provider_mirror,
    run,
    terraform,
    terraform_env,
)

MODULE_FILES = ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md")


def test_terraform_fmt_is_clean() -> None:
    result = run([terraform(), "fmt", "-check", "-recursive", "-diff", INFRA])
    assert result.returncode == 0, output(result)


@pytest.mark.parametrize("folder", [".", "examples/basic"])
def test_the_aws_module_and_its_example_validate(folder: str, tmp_path: Path) -> None:
    env = terraform_env(tmp_path, require_provider_mirror())
    workdir = copy_module("aws", tmp_path) / folder
    init = run([terraform(), "init", "-backend=false", "-input=false", "-no-color"], cwd=workdir, env=env)
    assert init.returncode == 0, output(init)
    validate = run([terraform(), "validate", "-json", "-no-color"], cwd=workdir, env=env)
    report = json.loads(validate.stdout)
    assert report["valid"] is True, output(validate)
    assert report["error_count"] == 0 and report["warning_count"] == 0, report["diagnostics"]


@pytest.mark.parametrize("cloud", CLOUDS)
def test_each_module_has_the_standard_layout_and_parses(cloud: str) -> None:
    module = INFRA / cloud
    for name in MODULE_FILES:
        assert (module / name).is_file(), f"infra/{cloud}/{name} is missing"
    examples = sorted(p for p in (module / "examples").iterdir() if p.is_dir())
    assert examples, f"infra/{cloud}/examples has no root module"

    parsed = parse_module(module)
    assert parsed["resource"], f"infra/{cloud} declares no resources"
    for example in examples:
        calls = [body for block in parse_module(example).get("module", []) for body in block.values()]
        assert [call["source"] for call in calls] == ["../.."], f"{example} should call the module at ../.."


@pytest.mark.parametrize("cloud", CLOUDS)
def test_every_variable_and_output_says_what_it_is(cloud: str) -> None:
    parsed = parse_module(INFRA / cloud)
    for block in parsed["variable"]:
        for name, body in block.items():
            assert body.get("description"), f"infra/{cloud}: variable {name} has no description"
            assert body.get("type"), f"infra/{cloud}: variable {name} has no type"
    outputs = {name for block in parsed["output"] for name in block}
    assert outputs, f"infra/{cloud} has no outputs"
