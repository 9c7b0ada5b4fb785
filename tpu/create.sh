#!/usr/bin/env bash
# Creates the TPU VM (or pod slice) and installs di-nas on every host.
#   BUCKET=gs://b tpu/create.sh                                   # one TPU VM (v4-8)
#   BUCKET=gs://b ACCELERATOR_TYPE=v4-32 \
#     RUNTIME_VERSION=tpu-vm-tf-2.16.1-pod-pjrt tpu/create.sh     # a pod slice (4 hosts)
set -euo pipefail
source "$(dirname "$0")/env.sh"

gcloud compute tpus tpu-vm create "$TPU_NAME" --zone="$ZONE" --project="$PROJECT" \
  --accelerator-type="$ACCELERATOR_TYPE" --version="$RUNTIME_VERSION"

# Every host gets the same checkout and install (on a pod slice only worker 0 runs the job,
# but identical hosts keep debugging simple).
tpu_ssh all "set -e
  if [ ! -d di-nas ]; then git clone $REPO_URL di-nas; fi
  cd di-nas && git pull --ff-only
  pip install -e '.[tpu]' -f $LIBTPU_INDEX"
