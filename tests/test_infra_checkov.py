"""checkov on template.yaml and infra/: no failed check, and every skip justified beside its resource and needed.

"Needed" is checked by scanning a copy with the skip comments removed: exactly the skipped (check, resource)
pairs must then fail. That also shows checkov really reads these files.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from tests.support.infra import INFRA, ROOT, output, run, tool

TF_SKIP = re.compile(r"^\s*#checkov:skip=.*\n", re.MULTILINE)
# template.yaml: a resource's Metadata entry `checkov: skip: [{id, comment}, ...]`, with everything indented under it
CFN_SKIPS = re.compile(r"^( +)checkov:\n(?:\1 .*\n)+", re.MULTILINE)
MIN_JUSTIFICATION = 40  # characters: a reason, not a placeholder

Finding = tuple[str, str, str]  # check id, resource, file (relative to what was scanned)


def checkov(*arguments: str | Path) -> dict[str, list[dict[str, Any]]]:
    """One checkov run (offline: --skip-download) and its results, all frameworks merged."""
    result = run([tool("checkov"), *arguments, "--skip-download", "--output", "json"], timeout=600)
    assert result.returncode in (0, 1), output(result)  # 1 = failed checks, which the tests report
    report = json.loads(result.stdout)
    merged: dict[str, list[dict[str, Any]]] = {"failed_checks": [], "skipped_checks": [], "parsing_errors": []}
    for one in report if isinstance(report, list) else [report]:
        for key in merged:
            merged[key] += one.get("results", {}).get(key, [])
    assert merged["parsing_errors"] == [], merged["parsing_errors"]
    return merged


def findings(checks: list[dict[str, Any]], scanned: Path) -> set[Finding]:
    return {(c["check_id"], c["resource"], Path(c["file_abs_path"]).relative_to(scanned).as_posix()) for c in checks}


def assert_clean_and_justified(results: dict[str, list[dict[str, Any]]]) -> None:
    failed = results["failed_checks"]
    assert [f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}" for c in failed] == []
    for skipped in results["skipped_checks"]:
        reason = skipped["check_result"].get("suppress_comment", "")
        assert len(reason) >= MIN_JUSTIFICATION, f"{skipped['check_id']} on {skipped['resource']}: {reason!r}"


def test_the_sam_template_fails_nothing_and_skips_only_what_would_fail(tmp_path: Path) -> None:
    results = checkov("--file", ROOT / "template.yaml", "--framework", "cloudformation")
    assert_clean_and_justified(results)

    stripped = tmp_path / "template.yaml"
    stripped.write_text(CFN_SKIPS.sub("", (ROOT / "template.yaml").read_text(encoding="utf-8")), encoding="utf-8")
    without_skips = checkov("--file", stripped, "--framework", "cloudformation")
    assert without_skips["skipped_checks"] == []
    assert findings(without_skips["failed_checks"], tmp_path) == findings(results["skipped_checks"], ROOT)


def test_the_terraform_modules_fail_nothing_and_skip_only_what_would_fail(tmp_path: Path) -> None:
    results = checkov("--directory", INFRA, "--framework", "terraform")
    assert_clean_and_justified(results)

    copy = tmp_path / "infra"
    shutil.copytree(INFRA, copy, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    for path in copy.rglob("*.tf"):
        path.write_text(TF_SKIP.sub("", path.read_text(encoding="utf-8")), encoding="utf-8")
    without_skips = checkov("--directory", copy, "--framework", "terraform")
    assert without_skips["skipped_checks"] == []
    assert findings(without_skips["failed_checks"], copy) == findings(results["skipped_checks"], INFRA)
