#!/usr/bin/env bash
# Runs the CIFAR-10 search of flags/tpu_pod.cfg on the TPU, writing to $OUTPUT_DIR (gs://).
# TensorFlow on Cloud TPU is single-client: one Python process on worker 0 drives every chip of
# the VM or slice. Extra flags are passed through: tpu/run.sh --epochs=10
# Prepare the data once (needs network): tfds build cifar10 --data_dir=$DATA_DIR
set -euo pipefail
source "$(dirname "$0")/env.sh"

if [[ "$RUNTIME_VERSION" == *pod* ]]; then
  TPU_FLAG="--tpu=$TPU_NAME"           # a slice: connect to every host by the TPU's name
  TPU_ENV="export TPU_NAME=$TPU_NAME TPU_LOAD_LIBRARY=0;"
else
  TPU_FLAG="--tpu=local"               # one VM: the chips are attached to this host
  TPU_ENV=""
fi
tpu_ssh 0 "set -e; cd di-nas; $TPU_ENV
  di-nas-search --flagfile=flags/tpu_pod.cfg --strategy=tpu $TPU_FLAG \
    --data_dir=$DATA_DIR --output_dir=$OUTPUT_DIR $*"
