"""Packaging of di-nas: the library, its five console scripts and their extras.

TensorFlow itself is an extra (cpu, gpu, tpu) because each machine needs a different wheel;
TPU VMs come with TensorFlow installed.
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
    python_requires=">=3.10",
    packages=find_packages(include=["di_nas", "di_nas.*"]),
    install_requires=[
        "tensorflow-datasets",
        "keras>=3",
        "keras-tuner>=1.4",
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
        "test": [
            "pytest",
            "tensorflow-cpu>=2.16; sys_platform != 'darwin'",
            "tensorflow>=2.16; sys_platform == 'darwin'",
        ],
    },
    entry_points={"console_scripts": CONSOLE_SCRIPTS},
)
