#!/usr/bin/env bash
# Deletes the TPU VM / pod slice (billing stops); results in $OUTPUT_DIR are kept.
set -euo pipefail
source "$(dirname "$0")/env.sh"
gcloud compute tpus tpu-vm delete "$TPU_NAME" --zone="$ZONE" --project="$PROJECT" --quiet
