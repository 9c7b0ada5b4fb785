"""tf.data input pipelines: shuffle, augment, normalise, batch, prefetch.

Augmentation is per dataset kind: CIFAR-like 32x32 colour data get pad-4 / random crop / flip;
other fixed-size data (digits, MNIST) get a small pad-crop and no flip (a flipped digit is a
different digit); variable-size data (ImageNet) get random-resized-crop + flip when training
and resize + centre crop otherwise. Cutout is applied after normalisation (zeros = the mean).
Random ops are stateless, seeded by ``(seed, example index)``, so a pipeline is reproducible.

This module must not know where data come from (``di_nas.data.sources`` does).
"""

from __future__ import annotations

import tensorflow as tf

from di_nas.config import DataConfig
from di_nas.data.sources import DataSource

AUTOTUNE = tf.data.AUTOTUNE
_CENTER_CROP_FRACTION = 0.875


def normalize(images_0_255: tf.Tensor, source: DataSource) -> tf.Tensor:
    """``(x / 255 - mean) / std`` per channel, as float32; any leading batch dimensions."""
    x = tf.cast(images_0_255, tf.float32) / 255.0
    return (x - tf.constant(source.mean, tf.float32)) / tf.constant(source.std, tf.float32)


def _cifar_like(shape: tuple) -> bool:
    return tuple(shape) == (32, 32, 3)


def _pad_crop(image: tf.Tensor, shape: tuple, pad: int, seed: tf.Tensor) -> tf.Tensor:
    padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
    return tf.image.stateless_random_crop(padded, shape, seed)


def _random_resized_crop(image: tf.Tensor, size: int, seed: tf.Tensor) -> tf.Tensor:
    begin, crop, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), tf.zeros([1, 0, 4], tf.float32), seed=seed, min_object_covered=0.1,
        aspect_ratio_range=(3 / 4, 4 / 3), area_range=(0.08, 1.0), max_attempts=10,
        use_image_if_no_bounding_boxes=True)
    return tf.image.resize(tf.slice(image, begin, crop), (size, size))


def _resize_center_crop(image: tf.Tensor, size: int) -> tf.Tensor:
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = (size / _CENTER_CROP_FRACTION) / tf.reduce_min(shape)
    resized = tf.image.resize(image, tf.cast(tf.round(shape * scale), tf.int32))
    return tf.image.resize_with_crop_or_pad(resized, size, size)


def _cutout(image: tf.Tensor, size: int, seed: tf.Tensor) -> tf.Tensor:
    h, w = image.shape[0], image.shape[1]
    center = tf.random.stateless_uniform([2], seed, 0, 2**31 - 1, dtype=tf.int32) % [h, w]
    rows, cols = tf.range(h)[:, None], tf.range(w)[None, :]
    inside = ((rows >= center[0] - size // 2) & (rows < center[0] + size - size // 2)
              & (cols >= center[1] - size // 2) & (cols < center[1] + size - size // 2))
    return image * tf.cast(~inside, image.dtype)[..., None]


def preprocess(image: tf.Tensor, source: DataSource, cfg: DataConfig, *, training: bool,
               seed: tf.Tensor) -> tf.Tensor:
    """One 0..255 HWC image -> the normalised float32 image the network sees.

    Args:
        seed: a shape-[2] integer tensor for the stateless random ops.
    """
    seeds = tf.random.experimental.stateless_split(seed, num=3)
    out_shape = tuple(source.image_shape)
    native = tuple(source.native_shape)
    augment = training and cfg.augment
    image = tf.cast(image, tf.float32)
    if native[0] is None:  # variable-size images (ImageNet-like)
        if augment:
            image = _random_resized_crop(image, out_shape[0], seeds[0])
            image = tf.image.stateless_random_flip_left_right(image, seeds[1])
        else:
            image = _resize_center_crop(image, out_shape[0])
    else:
        if augment:
            pad = 4 if _cifar_like(native) else max(1, native[0] // 8)
            image = _pad_crop(image, native, pad, seeds[0])
            if _cifar_like(native):
                image = tf.image.stateless_random_flip_left_right(image, seeds[1])
        if out_shape != native:
            image = tf.image.resize(image, out_shape[:2])
    image = tf.ensure_shape(image, out_shape)
    image = normalize(image, source)
    if training and cfg.cutout:
        image = _cutout(image, cfg.cutout, seeds[2])
    return image


def make_dataset(source: DataSource, split: str, batch_size: int, *, training: bool,
                 cfg: DataConfig, seed: int, repeat: bool | None = None,
                 shuffle: bool | None = None) -> tf.data.Dataset:
    """Batched ``(float32 normalised images, int32 labels)`` of one split.

    Args:
        source: from ``load_source``.
        split: ``train``, ``valid``, ``train_full`` or ``test``.
        batch_size: the global batch size.
        training: shuffle (seeded), augment and drop the last partial batch (static shapes).
        cfg: augmentation and shuffle-buffer settings.
        seed: seeds the shuffle order and the augmentation.
        repeat: repeat forever; defaults to ``training``.
        shuffle: shuffle (seeded by ``seed``); defaults to ``training``.
    """
    repeat = training if repeat is None else repeat
    shuffle = training if shuffle is None else shuffle
    ds = source.dataset(split)
    if shuffle:
        buffer = max(1, min(cfg.shuffle_buffer, source.size(split)))
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()

    def prepare(index, example):
        image, label = example
        image_seed = tf.stack([tf.constant(seed, tf.int64), index])
        image = preprocess(image, source, cfg, training=training, seed=image_seed)
        return image, tf.cast(label, tf.int32)

    ds = ds.enumerate().map(prepare, num_parallel_calls=AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=training)
    return ds.prefetch(AUTOTUNE)
