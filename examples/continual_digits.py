"""Disturbance immunity for a plain Keras CNN: learn digits 0-4, then 5-9, without forgetting.

Trains one small CNN on task A (digits 0-4), then on task B (digits 5-9), twice: plainly, and
with `di_nas.di.Protector` remembering A's inputs before B trains through a
`ProjectedOptimizer`. Prints one JSON line: the accuracy on A's test images after B
(`a_acc_after_b_*`) and on B's (`b_acc_*`), both read from the full 10-way output.

    python examples/continual_digits.py [--seed=0] [--epochs=20] [--beta=1e-2]
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from di_nas.di import keras as di_keras  # noqa: E402


def tasks(limit: int = 0):
    """Digits 0-4 (A) and 5-9 (B): `{name: (x_train, y_train, x_test, y_test)}` in 0..1."""
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    x_tr, x_te, y_tr, y_te = train_test_split(x, digits.target, test_size=0.3, random_state=0,
                                              stratify=digits.target)
    out = {}
    for name, classes in (("a", range(0, 5)), ("b", range(5, 10))):
        tr, te = np.isin(y_tr, classes), np.isin(y_te, classes)
        split = (x_tr[tr], y_tr[tr], x_te[te], y_te[te])
        out[name] = tuple(a[:limit] for a in split) if limit else split
    return out


def cnn(seed: int) -> keras.Model:
    """A plain CNN with one 10-way head shared by both tasks."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(64, 3, strides=2, padding="same", activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dense(10),
    ])


def fit(model, optimizer, x, y, epochs: int, seed: int) -> None:
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(
        from_logits=True), metrics=["accuracy"])
    keras.utils.set_random_seed(seed)
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0)


def accuracy(model, x, y) -> float:
    logits = model.predict(x, batch_size=256, verbose=0)
    return float(np.mean(np.argmax(logits, -1) == y))


def run(seed: int = 0, epochs: int = 20, beta: float = 1e-2, lr: float = 1e-3,
        limit: int = 0) -> dict:
    """Both runs of the experiment; returns the four accuracies."""
    data = tasks(limit)
    xa, ya, xa_test, ya_test = data["a"]
    xb, yb, xb_test, yb_test = data["b"]
    out = {}
    for mode in ("plain", "di"):
        model = cnn(seed)
        fit(model, keras.optimizers.Adam(lr), xa, ya, epochs, seed)
        optimizer = keras.optimizers.Adam(lr)
        if mode == "di":
            protector = di_keras.Protector(model, beta=beta)
            protector.remember(xa)
            optimizer = protector.wrap(optimizer)
        fit(model, optimizer, xb, yb, epochs, seed + 1)
        out[f"a_acc_after_b_{mode}"] = round(accuracy(model, xa_test, ya_test), 4)
        out[f"b_acc_{mode}"] = round(accuracy(model, xb_test, yb_test), 4)
    return {k: out[k] for k in ("a_acc_after_b_plain", "a_acc_after_b_di", "b_acc_plain",
                                "b_acc_di")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--beta", type=float, default=1e-2)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--limit", type=int, default=0, help="examples per split (0 = all)")
    args = parser.parse_args()
    print(json.dumps(run(args.seed, args.epochs, args.beta, args.lr, args.limit)))


if __name__ == "__main__":
    main()
