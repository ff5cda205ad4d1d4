#!/usr/bin/env bash
# Installs the infrastructure checkers, each into its own virtual environment under .tools/, because their
# pins clash with the project's (aws-sam-cli pins boto3 1.43.x; checkov pins boto3 1.35.x and installs a fork
# of python-hcl2 under the same module name):
#   .tools/sam       AWS SAM CLI; it depends on cfn-lint (1.58.0 with sam 1.170.0), which `sam validate --lint`
#                    runs, so cfn-lint comes from this venv too rather than a third 178 MB one
#   .tools/checkov   checkov
# and links .tools/bin/{sam,cfn-lint,checkov}, so one folder goes on PATH.
# Idempotent: a venv whose stamp file names the pinned version is left alone, so a second run takes well under
# a second. Missing tools install in parallel (about 40 s on a cold pip cache). Terraform is not installed here:
# it is not on PyPI, npm or apt; the tests use the one on PATH and skip with a message where it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

export SAM_CLI_TELEMETRY=0
PYTHON=${PYTHON:-python3}
TOOLS=.tools

# tool name → pinned requirement (bump here; the stamp makes the next `make tools` reinstall)
declare -A PINS=(
    [sam]="aws-sam-cli==1.170.0"
    [checkov]="checkov==3.3.30"
)

install() {
    local name=$1 spec=$2 venv=$TOOLS/$1
    rm -rf "$venv"
    "$PYTHON" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "$spec"
    echo "$spec" >"$venv/.installed"
}

mkdir -p "$TOOLS"
declare -A JOBS=()
for name in "${!PINS[@]}"; do
    spec=${PINS[$name]}
    if [[ -x $TOOLS/$name/bin/$name && -f $TOOLS/$name/.installed && $(<"$TOOLS/$name/.installed") == "$spec" ]]; then
        continue
    fi
    echo "installing $spec into $TOOLS/$name"
    install "$name" "$spec" >"$TOOLS/$name.log" 2>&1 &
    JOBS[$name]=$!
done

failed=0
for name in "${!JOBS[@]}"; do
    if wait "${JOBS[$name]}"; then
        rm -f "$TOOLS/$name.log"
    else
        echo "error: installing ${PINS[$name]} failed; pip said:" >&2
        cat "$TOOLS/$name.log" >&2
        failed=1
    fi
done
mkdir -p "$TOOLS/bin"
for tool in sam/bin/sam sam/bin/cfn-lint checkov/bin/checkov; do
    ln -sfn "../$tool" "$TOOLS/bin/${tool##*/}"
done
exit $failed
