"""Reading and validating user image files: ``npz:PATH`` archives and ``folder:PATH`` trees.

Each problem is reported as one ``UserError`` naming the file and the fix. This module returns
numpy arrays only; it must not split, batch or normalise.
"""

from __future__ import annotations

import os
import zipfile

import numpy as np

from di_nas.errors import UserError

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def check_npz_path(path: str) -> None:
    """Raises ``UserError`` unless ``path`` is an existing file."""
    if not path:
        raise UserError("npz: needs a path, e.g. --dataset=npz:/data/images.npz")
    if not os.path.isfile(path):
        raise UserError(f"npz file {path} does not exist: check the path in --dataset=npz:PATH")


def _images(path: str, key: str, x: np.ndarray) -> np.ndarray:
    if x.ndim == 3:
        x = x[..., None]  # grayscale HW -> HWC
    if x.ndim != 4:
        raise UserError(f"{path}: {key} has shape {x.shape}: expected (N, H, W) or (N, H, W, C)")
    if len(x) == 0:
        raise UserError(f"{path}: {key} is empty: it needs at least one image")
    if x.dtype == np.uint8:
        return x
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise UserError(f"{path}: {key} has dtype {x.dtype}: expected uint8 or float pixels")
    lo, hi = float(x.min()), float(x.max())
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0 or hi > 255:
        raise UserError(f"{path}: {key} values lie in [{lo}, {hi}]: expected pixels in 0..255")
    if np.issubdtype(x.dtype, np.floating) and hi <= 1.0:
        raise UserError(f"{path}: {key} looks scaled to 0..1: store pixels in 0..255")
    return x.astype(np.float32)


def _labels(path: str, key: str, y: np.ndarray, n: int) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise UserError(f"{path}: {key} has shape {y.shape}: expected one integer label per image")
    if len(y) != n:
        raise UserError(f"{path}: {key} has {len(y)} labels for {n} images: lengths must match")
    if np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
        y = y.astype(np.int64)
    if not np.issubdtype(y.dtype, np.integer):
        raise UserError(f"{path}: {key} has non-integer labels ({y.dtype}): use class ids 0..K-1")
    if y.min() < 0:
        raise UserError(f"{path}: {key} has negative labels: use class ids 0..K-1")
    return y.astype(np.int32)


def check_classes(where: str, y_train: np.ndarray, y_test: np.ndarray,
                  names: list[str] | None = None) -> None:
    """Raises ``UserError`` unless the labels make a classification task of 2 or more classes.

    Every class id ``0..K-1`` (``K`` = ``len(names)``, else the largest id + 1) needs a
    training example, and the test split may not hold a class the training split lacks, nor
    the training split ids beyond the largest the test split has (a test split of another
    labelling).

    Args:
        where: the file or folder, named in the message.
        y_train, y_test: integer class ids.
        names: class names (folders), when the ids index them.
    """
    label = (lambda i: f"{i} ({names[i]})") if names else str  # noqa: E731
    present = np.unique(y_train)
    if len(present) < 2:
        raise UserError(f"{where}: the training split holds {len(present)} class(es): "
                        "classification needs at least 2")
    num = len(names) if names else int(max(y_train.max(), y_test.max(initial=0))) + 1
    unseen = sorted(set(range(num)) - set(present.tolist()))
    if unseen:
        raise UserError(f"{where}: class {', '.join(map(label, unseen[:5]))} has no training "
                        f"example: every class id 0..{num - 1} needs one")
    if len(y_test) and int(y_train.max()) > int(y_test.max()):
        raise UserError(f"{where}: training labels go up to {label(int(y_train.max()))} but "
                        f"test labels only to {label(int(y_test.max()))}: both splits must "
                        "use the same class ids")


def read_npz(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Loads and validates ``x_train, y_train, x_test, y_test`` (``allow_pickle=False``)."""
    check_npz_path(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise UserError(f"{path} is not a readable .npz file ({e}): save it with "
                        "numpy.savez") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise UserError(f"{path} is a single .npy array, not an .npz archive: save it with "
                        f"numpy.savez(path, {'=..., '.join(NPZ_KEYS)}=...)")
    with archive:
        missing = [k for k in NPZ_KEYS if k not in archive.files]
        if missing:
            raise UserError(f"{path} lacks {', '.join(missing)}: an npz dataset needs the "
                            f"arrays {', '.join(NPZ_KEYS)}")
        try:
            arrays = {k: np.asarray(archive[k]) for k in NPZ_KEYS}
        except ValueError as e:  # object arrays need pickle, which we refuse
            raise UserError(f"{path} holds object arrays ({e}): store numeric arrays") from None
    return validate_arrays(path, *(arrays[k] for k in NPZ_KEYS))


def validate_arrays(where: str, x_train, y_train, x_test, y_test):
    """Checks and converts the four arrays of an image dataset (an npz file or NumPy arrays).

    Images are ``(N, H, W)`` or ``(N, H, W, C)``, uint8 or numbers in 0..255 (returned as
    uint8 or float32, always 4-D); labels one integer class id per image (int32).

    Raises:
        UserError: naming ``where`` and the array at fault.
    """
    x_train = _images(where, "x_train", np.asarray(x_train))
    x_test = _images(where, "x_test", np.asarray(x_test))
    if x_train.shape[1:] != x_test.shape[1:]:
        raise UserError(f"{where}: x_train images are {x_train.shape[1:]} but x_test images are "
                        f"{x_test.shape[1:]}: they must match")
    y_train = _labels(where, "y_train", np.asarray(y_train), len(x_train))
    y_test = _labels(where, "y_test", np.asarray(y_test), len(x_test))
    check_classes(where, y_train, y_test)
    return x_train, y_train, x_test, y_test


def _class_dirs(split_dir: str) -> list[str]:
    if not os.path.isdir(split_dir):
        return []
    return sorted(d for d in os.listdir(split_dir) if os.path.isdir(os.path.join(split_dir, d)))


def check_folder(root: str) -> None:
    """Raises ``UserError`` unless ``root`` holds ``train/<class>/`` and ``test/<class>/``."""
    if not os.path.isdir(root):
        raise UserError(f"image folder {root} does not exist: check --dataset=folder:PATH")
    for split in ("train", "test"):
        if not _class_dirs(os.path.join(root, split)):
            raise UserError(f"image folder {root} has no class folders in {split}/: expected "
                            f"{root}/{split}/<class name>/<image files>")


def _image_files(root: str, split: str, classes: list[str]) -> list[tuple[str, int]]:
    out = []
    for label, name in enumerate(classes):
        folder = os.path.join(root, split, name)
        if not os.path.isdir(folder):
            continue
        out += [(os.path.join(folder, f), label) for f in sorted(os.listdir(folder))
                if f.lower().endswith(_IMAGE_EXTENSIONS)]
    return out


def _decode(path: str, image_size: int) -> np.ndarray:
    """One image as uint8 RGB (HWC), resized to ``image_size`` squared when it is set."""
    import tensorflow as tf

    try:
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    except (tf.errors.OpError, OSError) as e:
        reason = " ".join(str(getattr(e, "message", e)).split())[:80]
        raise UserError(f"image {path} is unreadable ({reason}): fix or remove it") from None
    if image_size:
        image = tf.cast(tf.round(tf.clip_by_value(
            tf.image.resize(image, (image_size, image_size)), 0, 255)), tf.uint8)
    return image.numpy()


def _read_split(root: str, split: str, classes: list[str], image_size: int, first=None):
    """``(images, labels, first)``; ``first`` is ``(path, shape)`` every image must match."""
    files = _image_files(root, split, classes)
    if not files:
        raise UserError(f"image folder {root}/{split} holds no images with an extension "
                        f"among {', '.join(_IMAGE_EXTENSIONS)}")
    images = []
    for path, _ in files:
        images.append(_decode(path, image_size))
        first = first or (path, images[-1].shape)
        if images[-1].shape != first[1]:
            raise UserError(f"image {path} is {images[-1].shape} but {first[0]} is {first[1]}: "
                            "images must share one size; pass --image_size=N to resize them")
    return np.stack(images), np.asarray([label for _, label in files], np.int32), first


def read_folder(root: str, image_size: int = 0):
    """Reads ``root/{train,test}/<class>/<image>`` into memory, one file at a time.

    Images are decoded as RGB (the first frame of a GIF). With ``image_size`` they are
    resized to a square of that side; without it they must all have the same size. Class ids
    are the indices of the sorted class folders of ``train/``.

    Returns:
        ``(x_train, y_train, x_test, y_test, num_classes)``.

    Raises:
        UserError: naming the unreadable or odd-sized image, or the class without images.
    """
    check_folder(root)
    classes = _class_dirs(os.path.join(root, "train"))
    extra = sorted(set(_class_dirs(os.path.join(root, "test"))) - set(classes))
    if extra:
        raise UserError(f"image folder {root}: test class {extra[0]} has no folder in train/: "
                        "every test class needs training images")
    x_train, y_train, first = _read_split(root, "train", classes, image_size)
    x_test, y_test, _ = _read_split(root, "test", classes, image_size, first)
    check_classes(f"image folder {root}", y_train, y_test, classes)
    return x_train, y_train, x_test, y_test, len(classes)
