"""The controller: the ENAS LSTM policy, REINFORCE, and the Keras Tuner oracles.

Public API only; the math lives in `policy.py` / `reinforce.py`, Keras Tuner in `oracle.py`
(the oracles and the search's protocol) and `persistence.py`.

Imports `config`, `errors`, `io`, NumPy, TensorFlow, Keras and Keras Tuner; never supernets,
weights, training loops or flags: a controller emits architectures and reads rewards only.
"""

from di_nas.controller.oracle import (
    ORACLES,
    CompactBayesianOracle,
    CompactRandomSearchOracle,
    ReinforceOracle,
    make_oracle,
)
from di_nas.controller.persistence import CompactPersistenceMixin
from di_nas.controller.policy import ControllerPolicy
from di_nas.controller.reinforce import ReinforceTrainer, reinforce_loss, update_baseline
from di_nas.controller.samplers import UniformSampler, uniform_sample

__all__ = [
    "ORACLES", "CompactBayesianOracle", "CompactPersistenceMixin", "CompactRandomSearchOracle",
    "ControllerPolicy", "ReinforceOracle", "ReinforceTrainer", "UniformSampler",
    "make_oracle", "reinforce_loss", "uniform_sample", "update_baseline",
]
