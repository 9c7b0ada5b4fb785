#!/usr/bin/env bash
# Copies the run's results from Cloud Storage to runs/<RUN_NAME>/ on this machine.
set -euo pipefail
source "$(dirname "$0")/env.sh"
mkdir -p "runs/$RUN_NAME"
gcloud storage cp --recursive "$OUTPUT_DIR/*" "runs/$RUN_NAME/"
echo "copied $OUTPUT_DIR to runs/$RUN_NAME"
