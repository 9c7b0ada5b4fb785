"""Packaging of di-nas: the library, its five console scripts and their extras.

TensorFlow itself is an extra (cpu, gpu, tpu) because each machine needs a different wheel;
TPU VMs come with TensorFlow installed. The ``test`` extra holds test tools only, so it adds
no second TensorFlow build to any of them. ``constraints.txt`` pins the versions the README's
figures were measured with (``pip install -c constraints.txt -e '.[cpu,test]'``).
"""

import pathlib

from setuptools import find_packages, setup

ROOT = pathlib.Path(__file__).parent

CONSOLE_SCRIPTS = [
    "di-nas-search=di_nas.cli.search:run",
    "di-nas-train=di_nas.cli.train:run",
    "di-nas-export=di_nas.cli.export:run",
    "di-nas-study=di_nas.cli.study:run",
    "di-nas-bench=di_nas.cli.bench:run",
]

setup(
    name="di-nas",
    version="0.1.0",
    description="Disturbance-immune weight sharing for neural architecture search "
    "(TensorFlow/Keras)",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    # The Python versions TensorFlow >= 2.16 ships wheels for (2.21: 3.10 to 3.13).
    python_requires=">=3.10,<3.14",
    packages=find_packages(include=["di_nas", "di_nas.*"]),
    install_requires=[
        "tensorflow-datasets",
        "keras>=3",
        # The oracles use Keras Tuner's private API (keras_tuner.src.engine, Oracle._retry_queue,
        # _seed_state, _run_times, _record_values, ...): the same in 1.4.0, 1.4.6 and 1.4.8.
        "keras-tuner>=1.4,<1.5",
        # tensorflow-datasets 4.9 imports it but declares it only for Python < 3.9.
        "importlib_resources",
        "numpy",
        "absl-py",
        "scikit-learn",
        "matplotlib",
        "tensorboard",
        "tqdm",
        "scipy",
    ],
    extras_require={
        # tensorflow-cpu has no macOS wheels; there the plain package is the CPU build.
        "cpu": [
            "tensorflow-cpu>=2.16; sys_platform != 'darwin'",
            "tensorflow>=2.16; sys_platform == 'darwin'",
        ],
        "gpu": ["tensorflow[and-cuda]>=2.16"],
        "tpu": ["tensorflow-tpu"],
        # Test tools only: the TensorFlow build comes from cpu/gpu/tpu ('.[cpu,test]').
        # pytest-xdist runs the suite on every core (`-n auto` in pyproject.toml).
        "test": ["pytest", "pytest-xdist"],
    },
    entry_points={"console_scripts": CONSOLE_SCRIPTS},
)
