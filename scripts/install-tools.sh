#!/usr/bin/env bash
# Installs the infrastructure tools into .tools/ (filled in by the infrastructure work).
set -euo pipefail
