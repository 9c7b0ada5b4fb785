"""The controller: the ENAS LSTM policy, REINFORCE, and the Keras Tuner oracles.

Public API only; the math lives in `policy.py` / `reinforce.py`, Keras Tuner in `oracle.py`.
"""

from di_nas.controller.oracle import (
    CompactBayesianOracle,
    CompactPersistenceMixin,
    CompactRandomSearchOracle,
    ReinforceOracle,
    make_oracle,
)
from di_nas.controller.policy import ControllerPolicy
from di_nas.controller.reinforce import ReinforceTrainer, reinforce_loss, update_baseline
from di_nas.controller.samplers import UniformSampler, uniform_sample

__all__ = [
    "CompactBayesianOracle", "CompactPersistenceMixin", "CompactRandomSearchOracle",
    "ControllerPolicy", "ReinforceOracle", "ReinforceTrainer", "UniformSampler",
    "make_oracle", "reinforce_loss", "uniform_sample", "update_baseline",
]
