#!/usr/bin/env bash
# Settings shared by the tpu/ scripts; override any of them in the environment.
# Sourced, not run. Check the current names with:
#   gcloud compute tpus accelerator-types list --zone=$ZONE
#   gcloud compute tpus versions list --zone=$ZONE
TPU_NAME="${TPU_NAME:-di-nas}"
ZONE="${ZONE:-us-central2-b}"
PROJECT="${PROJECT:-$(gcloud config get-value project 2>/dev/null)}"
# A single TPU VM (one host, 4 chips) by default; a pod slice is e.g. v4-32 (4 hosts).
ACCELERATOR_TYPE="${ACCELERATOR_TYPE:-v4-8}"
# TensorFlow TPU VM images: "...-pjrt" for one host, "...-pod-pjrt" for pod slices.
RUNTIME_VERSION="${RUNTIME_VERSION:-tpu-vm-tf-2.16.1-pjrt}"
REPO_URL="${REPO_URL:-https://github.com/OWNER/di-nas.git}"
BUCKET="${BUCKET:?set BUCKET=gs://your-bucket (data and results live in Cloud Storage)}"
RUN_NAME="${RUN_NAME:-cifar10_tpu_pod}"
OUTPUT_DIR="${OUTPUT_DIR:-$BUCKET/runs/$RUN_NAME}"
DATA_DIR="${DATA_DIR:-$BUCKET/tfds}"
# Where the package's wheels for TPU come from (tensorflow-tpu and libtpu).
LIBTPU_INDEX="https://storage.googleapis.com/libtpu-tf-releases/index.html"

tpu_ssh() {  # tpu_ssh WORKER COMMAND  (WORKER: 0, 1, ... or all)
  gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE" --project="$PROJECT" \
    --worker="$1" --command="$2"
}
