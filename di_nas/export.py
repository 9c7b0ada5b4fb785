"""Export of a trained child network: a self-contained SavedModel and, optionally, TFLite.

``run_export(cfg)`` loads the network ``di-nas-train`` trained under ``cfg.output_dir`` and
writes a SavedModel (default ``<output_dir>/saved_model``) with two signatures, both taking a
batch of raw images of any batch size, pixels in 0..255, shape ``[batch, H, W, C]``:

- ``serving_default``: ``images`` float32; returns ``{"probabilities": float32 [batch, K]}``.
- ``serving_uint8``: ``images`` uint8; the same output.

The model normalises by itself with the training data's per-channel mean and std (0..1 pixel
units), stored in the export as the variable collection ``normalization`` (``mean``, ``std``).
A reader needs TensorFlow only: ``tf.saved_model.load(path).signatures["serving_default"]``.
With ``--tflite`` the float32 signature is converted to ``<output_dir>/model.tflite``.

Everything is written to temporary paths first and renamed at the end, so a failed export
leaves no half-written SavedModel or TFLite file. This module must not train anything.
"""

from __future__ import annotations

import os
import sys

import keras
import tensorflow as tf

from di_nas import io as dio
from di_nas.config import Config, ExportConfig
from di_nas.training import final
from di_nas.training.progress import log

SAVED_MODEL_DIR = "saved_model"
TFLITE_FILE = "model.tflite"
SIGNATURES = ("serving_default", "serving_uint8")


def export_saved_model(model: keras.Model, spec: final.ModelSpec, path: str) -> None:
    """Writes ``model`` with raw-pixel signatures (see the module docstring) to ``path``."""
    channels = spec.image_shape[-1]
    mean = keras.Variable(list(spec.mean), dtype="float32", trainable=False, name="mean")
    std = keras.Variable(list(spec.std), dtype="float32", trainable=False, name="std")
    if len(spec.mean) != channels:
        raise ValueError(f"{len(spec.mean)} channel means for {channels}-channel images")

    def probabilities(images):
        x = (tf.cast(images, tf.float32) / 255.0 - mean.value) / std.value
        logits = final.main_logits(model(x, training=False))
        return {"probabilities": tf.nn.softmax(logits, axis=-1)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_variable_collection("normalization", [mean, std])
    shape = [None, *spec.image_shape]
    archive.add_endpoint("serving_default", probabilities,
                         input_signature=[tf.TensorSpec(shape, tf.float32, name="images")])
    archive.add_endpoint("serving_uint8", probabilities,
                         input_signature=[tf.TensorSpec(shape, tf.uint8, name="images")])
    archive.write_out(path, verbose=False)


def tflite_bytes(saved_model_dir: str) -> bytes:
    """The ``serving_default`` signature of a SavedModel as a TFLite flatbuffer."""
    converter = tf.lite.TFLiteConverter.from_saved_model(
        saved_model_dir, signature_keys=["serving_default"])
    return converter.convert()


def run_export(cfg: Config) -> str:
    """Exports the network trained in ``cfg.output_dir``; returns the SavedModel path.

    Raises:
        UserError: there is no trained network in ``cfg.output_dir``.
    """
    out = cfg.output_dir
    model, spec, checkpoint = final.load_trained(out)
    export_dir = (cfg.export.export_dir or os.path.join(out, SAVED_MODEL_DIR)).rstrip("/")
    tmp_dir = dio.temp_path(export_dir)
    tflite_path = os.path.join(out, TFLITE_FILE)
    parent = os.path.dirname(export_dir)
    if parent:
        dio.makedirs(parent)
    try:
        export_saved_model(model, spec, tmp_dir)
        flatbuffer = tflite_bytes(tmp_dir) if cfg.export.tflite else None
        dio.replace_dir(tmp_dir, export_dir)
        if flatbuffer is not None:
            dio.atomic_write_bytes(tflite_path, flatbuffer)
    finally:
        dio.remove(tmp_dir)
    log(f"exported {checkpoint} to {export_dir} (signatures {', '.join(SIGNATURES)}: raw "
        f"0..255 pixels [batch, {', '.join(map(str, spec.image_shape))}] -> probabilities)"
        + (f" and {tflite_path}" if cfg.export.tflite else ""))
    return export_dir


class _CallableModule(type(sys.modules[__name__])):
    """Once imported, this module is the attribute `di_nas.export`, where the Python API's
    `di_nas.export(output_dir, export_dir=None, tflite=False)` also lives: calling the module
    does what that function does."""

    def __call__(self, output_dir: str, export_dir: str | None = None, tflite: bool = False):
        return run_export(Config(export=ExportConfig(export_dir=export_dir, tflite=tflite),
                                 output_dir=output_dir))


sys.modules[__name__].__class__ = _CallableModule
