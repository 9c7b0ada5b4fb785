"""The ENAS LSTM controller: a policy over the decisions of a search space.

`ControllerPolicy` samples architectures decision by decision and scores given ones
(teacher-forced log-probabilities and entropies), all inside a `tf.function` with no host round
trip, so the search can sample in the compiled training step (required on TPU). This module
holds the policy network only: the REINFORCE update lives in `reinforce.py`, Keras Tuner in
`oracle.py`. It must not build the supernet nor read rewards.

Heads. One shared softmax head per decision kind, as in ENAS's shared `w_soft`:
- 'op' decisions: a Dense to the number of ops; logits are
  `(tanh_constant / op_tanh_reduce) * tanh(logits / temperature)`;
- 'input' decisions: a Dense sized to the largest input count of the space, of which a decision
  with `n` valid inputs uses the first `n` columns (equivalent to masking the others to -inf);
  logits are `tanh_constant * tanh(logits / temperature)`. This is the simpler alternative to
  ENAS's attention over previous anchors.
The LSTM input at each step is the embedding (one table per kind) of the previous choice; the
first step reads a learned start embedding. All weights start uniform in [-0.1, 0.1] (ENAS).

Op prior (`op_prior`, ENAS micro's): the op head's learned bias starts at `PRIOR_LEARNED` for
the separable convs (0 for the other ops), and the op logits of the first (normal) cell get a
fixed `+PRIOR_FIXED` for the separable convs and `-PRIOR_FIXED` for the others, added after the
tanh, as the ENAS reference controller does (its `b_soft` and `b_soft_no_learn`, the latter
applied only when sampling the normal cell). With ENAS's temperature 5, tanh constant 1.1 and
op reduction 2.5, a normal-cell node then starts with p(sep conv) = 0.63 instead of 0.4.
Spaces without ops of kind `SEP_CONV` get no prior.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from di_nas.controller.samplers import as_seed
from di_nas.ops.base import SEP_CONV

KINDS = ("input", "op")
PRIOR_LEARNED = 10.0
PRIOR_FIXED = 0.25


def op_prior_biases(space) -> tuple[list[float], list[list[float]]] | None:
    """ENAS's op prior for `space`: (learned bias initial value, fixed bias per decision).

    Returns None when the space has no separable convs. The fixed bias is zero outside the
    first cell (decisions whose name starts with another cell name than the first decision's).
    """
    favoured = [op.kind == SEP_CONV for op in space.op_table]
    if not any(favoured):
        return None
    learned = [PRIOR_LEARNED if f else 0.0 for f in favoured]
    first_cell = space.decisions[0].name.split("/")[0]
    fixed = [[PRIOR_FIXED if f else -PRIOR_FIXED for f in favoured]
             if d.kind == "op" and d.name.split("/")[0] == first_cell else [0.0] * len(favoured)
             for d in space.decisions]
    return learned, fixed


class ControllerPolicy(keras.layers.Layer):
    """ENAS-style LSTM policy `pi(a; theta)` over `space.decisions`.

    Args:
      space: the `SearchSpace` whose decisions are sampled in order.
      lstm_units: LSTM width (one layer).
      tanh_constant: logits become `tanh_constant * tanh(logits / temperature)`; None keeps
        `logits / temperature`.
      op_tanh_reduce: op logits use `tanh_constant / op_tanh_reduce`.
      temperature: divides the raw logits; None means 1.
      op_prior: ENAS's op prior favouring the separable convs (module docstring).
      seed: seeds the weight initialisers and the sampling generator.
      name: layer name.
    """

    def __init__(self, space, lstm_units: int = 64, tanh_constant: float | None = 1.10,
                 op_tanh_reduce: float = 2.5, temperature: float | None = 5.0,
                 op_prior: bool = False, seed: int = 0, name: str = "controller_policy"):
        super().__init__(name=name, dtype="float32")
        self.space = space
        self.lstm_units = lstm_units
        self.tanh_constant = tanh_constant
        self.op_tanh_reduce = op_tanh_reduce
        self.temperature = temperature
        prior = op_prior_biases(space) if op_prior else None
        self._fixed_bias = None if prior is None else tf.constant(prior[1], tf.float32)
        self._kinds = tuple(d.kind for d in space.decisions)
        self._sizes = tuple(int(d.num_choices) for d in space.decisions)
        unknown = set(self._kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"decision kinds {sorted(unknown)} are not among {KINDS}")

        def init(offset):
            return keras.initializers.RandomUniform(-0.1, 0.1, seed=seed * 1000 + offset)

        self.cell = keras.layers.LSTMCell(
            lstm_units, kernel_initializer=init(1), recurrent_initializer=init(2),
            bias_initializer=init(3), dtype="float32", name="lstm")
        self.cell.build((None, lstm_units))
        self.start_embedding = self.add_weight(
            name="start_embedding", shape=(1, lstm_units), initializer=init(4))
        self._widths = {}
        for i, kind in enumerate(k for k in KINDS if k in self._kinds):
            width = max(n for k, n in zip(self._kinds, self._sizes, strict=True) if k == kind)
            self._widths[kind] = width
            bias_init = (keras.initializers.Constant(prior[0]) if kind == "op" and prior
                         else init(11 + 3 * i))
            head = keras.layers.Dense(width, kernel_initializer=init(10 + 3 * i),
                                      bias_initializer=bias_init, dtype="float32",
                                      name=f"{kind}_head")
            head.build((None, lstm_units))
            setattr(self, f"{kind}_head", head)
            setattr(self, f"{kind}_embedding", self.add_weight(
                name=f"{kind}_embedding", shape=(width, lstm_units), initializer=init(12 + 3 * i)))
        # Sampling state: checkpointable with the weights, reproducible from `seed`.
        self.rng = tf.random.Generator.from_seed(seed)
        self.built = True

    def _logits(self, t: int, kind: str, size: int, output: tf.Tensor) -> tf.Tensor:
        logits = getattr(self, f"{kind}_head")(output)[:, :size]
        if self.temperature is not None:
            logits = logits / self.temperature
        if self.tanh_constant is not None:
            scale = self.tanh_constant
            if kind == "op":
                scale = scale / self.op_tanh_reduce
            logits = scale * tf.tanh(logits)
        if kind == "op" and self._fixed_bias is not None:
            logits = logits + self._fixed_bias[t, :size]
        return logits

    def _unroll(self, num, choose):
        """Runs the LSTM over all decisions; `choose(t, logits) -> int32 [num]` picks choices.

        Returns:
          (archs int32 [num, D], log_probs [num], entropies [num], per-step probs list).
        """
        zeros = tf.zeros(tf.stack([num, self.lstm_units]))
        states = [zeros, zeros]
        x = tf.tile(self.start_embedding, tf.stack([num, 1]))
        log_prob, entropy, choices, probs = 0.0, 0.0, [], []
        for t, (kind, size) in enumerate(zip(self._kinds, self._sizes, strict=True)):
            output, states = self.cell(x, states)
            logits = self._logits(t, kind, size, output)
            log_p = tf.nn.log_softmax(logits)
            p = tf.exp(log_p)
            choice = choose(t, logits)
            log_prob += tf.gather(log_p, choice, batch_dims=1)
            entropy += -tf.reduce_sum(p * log_p, axis=-1)
            choices.append(choice)
            probs.append(p)
            x = tf.gather(getattr(self, f"{kind}_embedding"), choice)
        return tf.stack(choices, axis=1), log_prob, entropy, probs

    def sample(self, num, seed=None):
        """Samples `num` architectures.

        Args:
          num: batch size (int or scalar int32 tensor).
          seed: int or shape-[2] int tensor for a reproducible draw; None advances the policy's
            own `tf.random.Generator` (checkpointed with the policy).

        Returns:
          (archs int32 [num, D], log_probs float32 [num], entropies float32 [num]). The
          log-probs are differentiable with respect to the policy weights.
        """
        seed = self.rng.make_seeds(1)[:, 0] if seed is None else as_seed(seed)
        step_seeds = tf.random.experimental.stateless_split(seed, num=len(self._sizes))

        def choose(t, logits):
            return tf.random.stateless_categorical(logits, 1, seed=step_seeds[t],
                                                   dtype=tf.int32)[:, 0]

        archs, log_prob, entropy, _ = self._unroll(tf.cast(num, tf.int32), choose)
        return archs, log_prob, entropy

    def log_prob(self, archs):
        """Teacher-forced `(log_probs [num], entropies [num])` of int32 `archs` [num, D]."""
        _, log_prob, entropy, _ = self._teacher_forced(archs)
        return log_prob, entropy

    def probabilities(self, archs):
        """Per-decision choice probabilities along `archs` (teacher-forced).

        Returns:
          A list of D float32 tensors; entry d has shape [num, num_choices[d]] and holds
          `pi(a_d = . | a_<d)`.
        """
        return self._teacher_forced(archs)[3]

    def _teacher_forced(self, archs):
        archs = tf.convert_to_tensor(archs, tf.int32)
        return self._unroll(tf.shape(archs)[0], lambda t, logits: archs[:, t])

    def call(self, num):
        """Keras entry point: `sample(num)`."""
        return self.sample(num)
