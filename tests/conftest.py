"""Shared pytest set-up: quiet TensorFlow, two logical CPUs, fixed seeds.

The CPU is split into two logical devices before TensorFlow initialises, so distribution tests
can run a ``MirroredStrategy`` on a laptop. Nothing here may touch the network.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # must precede the TensorFlow import

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

NUM_LOGICAL_CPUS = 2


def _split_cpu() -> None:
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration()] * NUM_LOGICAL_CPUS)
    except RuntimeError:  # TensorFlow was initialised already (e.g. by a plugin)
        pass


_split_cpu()


# The files that take minutes, longest first (measured on 2 idle cores). pytest-xdist hands out
# whole files (`--dist loadfile`) in collection order; starting the long ones first keeps the
# workers' finishing times close (alphabetical order left one worker ~80 s of work alone).
LONGEST_FIRST = ("test_supernet.py", "test_studies.py", "test_search.py", "test_final.py",
                 "test_precision.py", "test_resume.py", "test_multiworker.py", "test_di.py",
                 "test_examples.py", "test_bench.py", "test_distribute.py", "test_export.py",
                 "test_di_update.py", "test_api.py")


def pytest_collection_modifyitems(items):
    """Long files first (`LONGEST_FIRST`); the rest, and the tests inside a file, in order."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(autouse=True)
def _seeds():
    """Every test starts from the same Python, NumPy and TensorFlow seeds."""
    import keras

    keras.utils.set_random_seed(0)
    yield


@pytest.fixture
def repo_root() -> str:
    """Absolute path of the repository root (`tests.helpers.ROOT`)."""
    from tests.helpers import ROOT

    return ROOT
