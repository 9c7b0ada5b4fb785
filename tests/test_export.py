"""Export: the SavedModel serves raw pixels to a process that never imports di_nas, matches the
Keras model, TFLite matches the SavedModel, and failures are clean.
"""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from di_nas import config
from di_nas import export as export_lib
from di_nas.errors import UserError
from di_nas.search_space import get_space
from di_nas.training import final
from tests.helpers import cli_env, run_cli, write_npz

# Reloads with TensorFlow alone: the export must not need di_nas (or Keras) to serve.
RELOAD_SCRIPT = """
import sys
import numpy as np
import tensorflow as tf

path, inputs, outputs = sys.argv[1:]
loaded = tf.saved_model.load(path)
data = np.load(inputs)
results = {}
for key in data.files:
    x = data[key]
    name = "serving_uint8" if x.dtype == np.uint8 else "serving_default"
    results[key] = loaded.signatures[name](images=tf.constant(x))["probabilities"].numpy()
results["normalization"] = np.stack([v.numpy() for v in loaded.normalization])
assert not any(m.startswith("di_nas") for m in sys.modules), "the export imported di_nas"
np.savez(outputs, **results)
"""

# TensorFlow's own start-up lines (absl logs before InitializeLog ignore TF_CPP_MIN_LOG_LEVEL).
_TF_STARTUP = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\)"
                         r"|[IWE]\d{4} [\d:.]+ +\d+ \S+:\d+\] )")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny network trained one epoch on synthetic 8x8 grey images, exported with TFLite."""
    tmp = tmp_path_factory.mktemp("export")
    write_npz(tmp / "data.npz", n_train=48, n_test=8, classes=4)
    get_space("enas_micro").sample(np.random.default_rng(2)).save(str(tmp / "arch.json"))
    cfg = config.tiny(output_dir=str(tmp / "out")).replace(
        data={"dataset": f"npz:{tmp / 'data.npz'}"},
        final={"architecture": str(tmp / "arch.json"), "epochs": 1, "auxiliary_weight": 0.4},
        export={"tflite": True})
    final.run_final_training(cfg)
    path = export_lib.run_export(cfg)
    return cfg, path


def test_reload_without_di_nas_matches_keras(trained, tmp_path):
    cfg, path = trained
    assert path == os.path.join(cfg.output_dir, "saved_model")
    rng = np.random.default_rng(1)
    inputs = {"uint8_1": rng.integers(0, 256, (1, 8, 8, 1), dtype=np.uint8),
              "uint8_7": rng.integers(0, 256, (7, 8, 8, 1), dtype=np.uint8),
              "float_1": rng.uniform(0, 255, (1, 8, 8, 1)).astype(np.float32),
              "float_7": rng.uniform(0, 255, (7, 8, 8, 1)).astype(np.float32)}
    np.savez(tmp_path / "in.npz", **inputs)
    script = tmp_path / "reload.py"
    script.write_text(RELOAD_SCRIPT)
    result = subprocess.run([sys.executable, str(script), path, str(tmp_path / "in.npz"),
                             str(tmp_path / "out.npz")], cwd=str(tmp_path), env=cli_env(),
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    served = np.load(tmp_path / "out.npz")

    model, spec, _ = final.load_trained(cfg.output_dir)
    np.testing.assert_allclose(served["normalization"], [spec.mean, spec.std], rtol=1e-6)
    for key, x in inputs.items():
        images = (x.astype(np.float32) / 255.0 - np.float32(spec.mean)) / np.float32(spec.std)
        expected = tf.nn.softmax(final.main_logits(model(images, training=False))).numpy()
        assert served[key].shape == (len(x), spec.num_classes)
        assert np.abs(served[key] - expected).max() <= 1e-5, key
        np.testing.assert_allclose(served[key].sum(axis=1), 1.0, atol=1e-5)


def test_tflite_matches_saved_model(trained):
    cfg, path = trained
    images = np.random.default_rng(3).uniform(0, 255, (7, 8, 8, 1)).astype(np.float32)
    expected = tf.saved_model.load(path).signatures["serving_default"](
        images=tf.constant(images))["probabilities"].numpy()
    interpreter = tf.lite.Interpreter(model_path=os.path.join(cfg.output_dir, "model.tflite"))
    got = interpreter.get_signature_runner("serving_default")(images=images)["probabilities"]
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_failed_export_leaves_nothing(trained, tmp_path, monkeypatch):
    cfg, _ = trained
    target = tmp_path / "elsewhere" / "sm"
    tflite = os.path.join(cfg.output_dir, "model.tflite")
    before = os.path.getmtime(tflite)

    def broken(model, spec, path):  # dies half-way through writing the SavedModel
        os.makedirs(os.path.join(path, "variables"))
        open(os.path.join(path, "saved_model.pb"), "wb").close()
        raise RuntimeError("disk full")

    monkeypatch.setattr(export_lib, "export_saved_model", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        export_lib.run_export(cfg.replace(export={"export_dir": str(target), "tflite": True}))
    assert not target.exists() and os.listdir(target.parent) == []
    assert os.path.getmtime(tflite) == before
    assert not [n for n in os.listdir(cfg.output_dir) if ".tmp-" in n]


def test_missing_checkpoint(tmp_path):
    empty = tmp_path / "empty"
    with pytest.raises(UserError, match="no trained model in"):
        final.load_trained(str(empty))
    result = run_cli("export", f"--output_dir={empty}")
    lines = [line for line in result.stderr.splitlines()
             if line.strip() and not _TF_STARTUP.match(line)]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("di-nas-export: error: no trained model in ")
    assert "run di-nas-train" in lines[0] and "Traceback" not in result.stderr
    assert not empty.exists()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
