"""Data sources and pipelines on tiny data made here: digits, npz, folder, TFDS absent."""

import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from di_nas import data
from di_nas.config import DataConfig
from di_nas.errors import UserError


@pytest.fixture(scope="module")
def digits():
    return data.load_source(DataConfig(), seed=0)


def test_digits_source(digits):
    assert (digits.name, digits.num_classes, digits.image_shape) == ("digits", 10, (8, 8, 1))
    assert digits.num_train + digits.num_valid == 1437 and digits.num_test == 360
    assert abs(digits.num_valid - 1437 * 0.5) <= 1
    x, y = next(iter(digits.dataset("train").batch(2000)))
    assert x.dtype == tf.uint8 and y.dtype == tf.int32 and len(x) == digits.num_train
    assert int(tf.reduce_max(x)) == 255 and int(tf.reduce_min(x)) == 0
    assert 0.2 < digits.mean[0] < 0.4 and digits.std[0] > 0.2


def test_digits_split_is_seeded(digits):
    def labels(source, split):
        return next(iter(source.dataset(split).batch(5000)))[1].numpy()

    again = data.load_source(DataConfig(), seed=0)
    other = data.load_source(DataConfig(), seed=1)
    np.testing.assert_array_equal(labels(digits, "valid"), labels(again, "valid"))
    np.testing.assert_array_equal(labels(digits, "test"), labels(other, "test"))  # fixed 80/20
    x0 = next(iter(digits.dataset("valid").batch(5000)))[0].numpy()
    x1 = next(iter(other.dataset("valid").batch(5000)))[0].numpy()
    assert not np.array_equal(x0, x1)
    smaller = data.load_source(DataConfig(valid_fraction=0.25), seed=0)
    assert smaller.num_valid == round(1437 * 0.25)


def test_training_batches_are_normalised_and_static(digits):
    cfg = DataConfig(batch_size=32)
    ds = data.make_dataset(digits, "train", 32, training=True, cfg=cfg, seed=0)
    assert ds.element_spec[0].shape == (32, 8, 8, 1)
    images, labels = next(iter(ds))
    assert images.dtype == tf.float32 and labels.dtype == tf.int32
    big = next(iter(data.make_dataset(digits, "train_full", 1024, training=False, cfg=cfg, seed=0)))
    assert abs(float(tf.reduce_mean(big[0]))) < 0.1
    assert abs(float(tf.math.reduce_std(big[0])) - 1.0) < 0.1


def test_pipeline_is_deterministic_and_eval_keeps_every_example(digits):
    cfg = DataConfig(cutout=3)

    def first(seed):
        ds = data.make_dataset(digits, "train", 16, training=True, cfg=cfg, seed=seed)
        return next(iter(ds))[0].numpy()

    np.testing.assert_array_equal(first(0), first(0))
    assert not np.array_equal(first(0), first(1))
    test = data.make_dataset(digits, "test", 100, training=False, cfg=cfg, seed=0)
    assert sum(int(b[1].shape[0]) for b in test) == digits.num_test


def test_normalize_inverts_stats(digits):
    images = tf.fill([2, 8, 8, 1], 255.0 * digits.mean[0])
    np.testing.assert_allclose(data.normalize(images, digits).numpy(), 0.0, atol=1e-5)


def _write_npz(path, **overrides):
    rng = np.random.default_rng(0)
    arrays = dict(x_train=rng.integers(0, 256, (20, 6, 6, 3), dtype=np.uint8),
                  y_train=np.arange(20) % 3, x_test=rng.integers(0, 256, (6, 6, 6, 3),
                                                                 dtype=np.uint8),
                  y_test=np.arange(6) % 3)
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return f"npz:{path}"


def test_npz_good_path(tmp_path):
    name = _write_npz(tmp_path / "d.npz")
    source = data.load_source(DataConfig(dataset=name, valid_fraction=0.25), seed=0)
    assert (source.num_classes, source.image_shape, source.num_valid) == (3, (6, 6, 3), 5)
    assert (source.num_train, source.num_test) == (15, 6)
    ds = data.make_dataset(source, "train", 4, training=True, cfg=DataConfig(), seed=0)
    assert next(iter(ds))[0].shape == (4, 6, 6, 3)


def test_npz_grayscale_float(tmp_path):
    rng = np.random.default_rng(0)
    name = _write_npz(tmp_path / "g.npz", x_train=rng.uniform(0, 255, (10, 5, 5)),
                      x_test=rng.uniform(0, 255, (4, 5, 5)), y_train=np.arange(10.0) % 2,
                      y_test=np.arange(4) % 2)
    source = data.load_source(DataConfig(dataset=name), seed=0)
    assert source.image_shape == (5, 5, 1) and source.num_classes == 2


@pytest.mark.parametrize("overrides, fragment", [
    ({"y_test": None}, "lacks y_test"),
    ({"y_train": np.arange(19) % 3}, "lengths must match"),
    ({"y_train": np.linspace(0, 1, 20)}, "non-integer"),
    ({"y_train": np.arange(20) - 1}, "negative"),
    ({"x_test": np.zeros((0, 6, 6, 3), np.uint8), "y_test": np.zeros(0, int)}, "empty"),
    ({"x_train": np.zeros((20, 6), np.uint8)}, "expected (N, H, W)"),
    ({"x_train": np.full((20, 6, 6, 3), 300.0)}, "0..255"),
    ({"x_train": np.full((20, 6, 6, 3), 0.5)}, "0..1"),
    ({"x_test": np.zeros((6, 7, 7, 3), np.uint8)}, "must match"),
])
def test_npz_bad_cases(tmp_path, overrides, fragment):
    name = _write_npz(tmp_path / "bad.npz", **overrides)
    with pytest.raises(UserError, match=None) as info:
        data.load_source(DataConfig(dataset=name), seed=0)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_npz_missing_or_not_npz(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        data.load_source(DataConfig(dataset=f"npz:{tmp_path}/none.npz"), seed=0)
    (tmp_path / "t.npz").write_text("not an archive")
    with pytest.raises(UserError, match="not a readable"):
        data.load_source(DataConfig(dataset=f"npz:{tmp_path}/t.npz"), seed=0)
    np.save(tmp_path / "a.npy", np.zeros(3))
    os.rename(tmp_path / "a.npy", tmp_path / "a.npz")
    with pytest.raises(UserError, match="not an .npz archive"):
        data.load_source(DataConfig(dataset=f"npz:{tmp_path}/a.npz"), seed=0)


def _write_folder(root, classes=("cat", "dog"), per_class=3, size=(5, 5)):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for name in classes:
            os.makedirs(root / split / name)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
                tf.io.write_file(str(root / split / name / f"{i}.png"), tf.io.encode_png(pixels))
    return f"folder:{root}"


def test_folder_good_path(tmp_path):
    name = _write_folder(tmp_path / "imgs")
    source = data.load_source(DataConfig(dataset=name), seed=0)
    assert (source.num_classes, source.image_shape) == (2, (5, 5, 3))
    assert source.num_train + source.num_valid == 6 and source.num_test == 6
    resized = data.load_source(DataConfig(dataset=name, image_size=4), seed=0)
    assert resized.image_shape == (4, 4, 3)


def test_folder_without_class_folders(tmp_path):
    (tmp_path / "empty" / "train").mkdir(parents=True)
    (tmp_path / "empty" / "test").mkdir()
    with pytest.raises(UserError, match="no class folders"):
        data.load_source(DataConfig(dataset=f"folder:{tmp_path}/empty"), seed=0)
    with pytest.raises(UserError, match="does not exist"):
        data.load_source(DataConfig(dataset=f"folder:{tmp_path}/nowhere"), seed=0)


@pytest.mark.parametrize("overrides, fragment", [
    ({"y_train": np.zeros(20, int), "y_test": np.zeros(6, int)}, "at least 2"),
    ({"y_train": np.arange(20) % 3 * 2}, "class 1, 3 has no training example"),
    ({"y_test": np.array([0, 1, 2, 3, 0, 1])}, "class 3 has no training example"),
    ({"y_test": np.arange(6) % 2}, "test labels only to 1"),
])
def test_npz_label_sanity(tmp_path, overrides, fragment):
    name = _write_npz(tmp_path / "labels.npz", **overrides)
    with pytest.raises(UserError) as info:
        data.load_source(DataConfig(dataset=name), seed=0)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_folder_sanity_names_the_file(tmp_path):
    name = _write_folder(tmp_path / "a")
    (tmp_path / "a" / "train" / "dog" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match=r"image .*dog/bad.png is unreadable"):
        data.load_source(DataConfig(dataset=name), seed=0)
    name = _write_folder(tmp_path / "b")
    odd = tf.io.encode_png(np.zeros((7, 5, 3), np.uint8))
    tf.io.write_file(str(tmp_path / "b" / "test" / "cat" / "odd.png"), odd)
    with pytest.raises(UserError, match=r"cat/odd.png is \(7, 5, 3\) but .* is \(5, 5, 3\)"):
        data.load_source(DataConfig(dataset=name), seed=0)
    assert data.load_source(DataConfig(dataset=name, image_size=4), seed=0).num_test == 7
    name = _write_folder(tmp_path / "c")
    os.makedirs(tmp_path / "c" / "test" / "emu")
    with pytest.raises(UserError, match="test class emu has no folder in train"):
        data.load_source(DataConfig(dataset=name), seed=0)
    name = _write_folder(tmp_path / "d", classes=("cat",))
    with pytest.raises(UserError, match="at least 2"):
        data.load_source(DataConfig(dataset=name), seed=0)


@pytest.mark.parametrize("name", ["no_such_dataset", "Cifar-10!", "npzz:/x", "glue"])
def test_unknown_dataset(name):
    with pytest.raises(UserError, match="npz:PATH") as info:
        data.load_source(DataConfig(dataset=name), seed=0)
    assert "\n" not in str(info.value)


def test_tfds_not_prepared_never_downloads(tmp_path):
    cfg = DataConfig(dataset="mnist", data_dir=str(tmp_path / "tfds"))
    with pytest.raises(UserError, match="not prepared") as info:
        data.load_source(cfg, seed=0)
    assert "--download" in str(info.value) and str(tmp_path) in str(info.value)
    assert not any((tmp_path / "tfds").rglob("*.tfrecord*"))


def test_cifar_like_augmentation_keeps_shape():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    y = np.arange(8) % 2
    source = data.from_arrays("toy", x, y, x[:2], y[:2], DataConfig(), seed=0)
    cfg = DataConfig(cutout=8, image_size=16)
    ds = data.make_dataset(source, "train", 2, training=True, cfg=cfg, seed=0)
    assert next(iter(ds))[0].shape == (2, 32, 32, 3)  # image_size is applied by load_source
    sized = data.from_arrays("toy", x, y, x[:2], y[:2], cfg, seed=0)
    assert next(iter(data.make_dataset(sized, "test", 2, training=False, cfg=cfg,
                                       seed=0)))[0].shape == (2, 16, 16, 3)


def test_variable_size_images_are_cropped_to_image_size():
    images = [np.zeros((h, w, 3), np.uint8) for h, w in ((40, 30), (20, 50))]
    ds = tf.data.Dataset.from_generator(
        lambda: ((im, np.int32(0)) for im in images),
        output_signature=(tf.TensorSpec((None, None, 3), tf.uint8), tf.TensorSpec((), tf.int32)))
    source = data.DataSource(name="var", num_classes=2, image_shape=(16, 16, 3),
                             mean=(0.5,) * 3, std=(0.25,) * 3, num_train=2, num_valid=0,
                             num_test=2, native_shape=(None, None, 3), make_split=lambda s: ds)
    for training in (True, False):
        batch = next(iter(data.make_dataset(source, "train", 2, training=training,
                                            cfg=DataConfig(), seed=0)))
        assert batch[0].shape == (2, 16, 16, 3)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
