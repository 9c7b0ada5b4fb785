"""Tests of the controller policy, the REINFORCE math and trainer, and the uniform sampler."""

import numpy as np
import pytest
import tensorflow as tf

from di_nas.controller.policy import ControllerPolicy, op_prior_biases
from di_nas.controller.reinforce import ReinforceTrainer, reinforce_loss, update_baseline
from di_nas.controller.samplers import UniformSampler, uniform_sample
from di_nas.search_space import get_space


@pytest.fixture(scope="module", params=["enas_micro", "nb201"])
def space_and_policy(request):
    space = get_space(request.param)
    return space, ControllerPolicy(space, seed=3)


def test_sample_is_valid_reproducible_and_matches_teacher_forcing(space_and_policy):
    space, policy = space_and_policy
    archs, log_probs, entropies = policy.sample(8, seed=7)
    assert archs.shape == (8, space.length) and archs.dtype == tf.int32
    for row in archs.numpy():
        space.architecture(row)  # Raises on an invalid choice.
    again, _, _ = policy.sample(8, seed=7)
    np.testing.assert_array_equal(archs, again)
    forced_lp, forced_ent = policy.log_prob(archs)
    np.testing.assert_allclose(forced_lp, log_probs, rtol=1e-5)
    np.testing.assert_allclose(forced_ent, entropies, rtol=1e-5)
    # Near-uniform at initialisation: entropy close to sum(log n), log-prob close to -that.
    max_entropy = np.log(space.num_choices.astype(np.float64)).sum()
    assert np.all(entropies.numpy() <= max_entropy + 1e-4)
    assert np.all(entropies.numpy() > 0.9 * max_entropy)


def test_probabilities_are_distributions_over_valid_choices(space_and_policy):
    space, policy = space_and_policy
    archs, log_probs, _ = policy.sample(4, seed=1)
    probs = policy.probabilities(archs)
    assert [p.shape[1] for p in probs] == list(space.num_choices)
    chosen = sum(np.log(p.numpy()[np.arange(4), archs.numpy()[:, d]])
                 for d, p in enumerate(probs))
    np.testing.assert_allclose(chosen, log_probs, rtol=1e-4)
    for p in probs:
        np.testing.assert_allclose(p.numpy().sum(axis=1), 1.0, rtol=1e-5)


def test_sampling_in_tf_function_uses_checkpointed_generator(tmp_path):
    policy = ControllerPolicy(get_space("nb201"), seed=0)
    sample = tf.function(lambda: policy.sample(16)[0])
    ckpt = tf.train.Checkpoint(policy=policy)
    path = ckpt.save(str(tmp_path / "ckpt"))
    first, second = sample().numpy(), sample().numpy()
    assert not np.array_equal(first, second)  # The generator state advances in-graph.
    ckpt.restore(path)
    np.testing.assert_array_equal(sample().numpy(), first)


def test_enas_op_prior_favours_separable_convs_in_the_normal_cell():
    space = get_space("enas_micro")
    plain = ControllerPolicy(space, seed=0)
    prior = ControllerPolicy(space, op_prior=True, seed=0)
    np.testing.assert_allclose(prior.op_head.bias.numpy(), [10.0, 10.0, 0.0, 0.0, 0.0])
    archs, _, _ = prior.sample(4, seed=2)
    ops = [d for d, dec in enumerate(space.decisions) if dec.kind == "op"]
    half = len(ops) // 2  # The normal cell's op decisions come first.

    def p_sep(policy, decisions):
        probs = policy.probabilities(archs)
        return np.mean([probs[d].numpy()[:, :2].sum(axis=1) for d in decisions])

    # ENAS: 0.44 tanh(10 / 5) + 0.25 against -0.25 -> 0.63; the reduce cell has no fixed bias.
    assert abs(p_sep(prior, ops[:half]) - 0.63) < 0.03
    assert abs(p_sep(prior, ops[half:]) - 0.50) < 0.03
    assert abs(p_sep(plain, ops) - 0.40) < 0.03
    assert op_prior_biases(get_space("nb201")) is None  # No separable convs: no prior.


def test_tanh_bounds_the_logits():
    space = get_space("enas_micro")
    policy = ControllerPolicy(space, tanh_constant=1.1, op_tanh_reduce=2.5, temperature=5.0)
    for head in (policy.op_head, policy.input_head):
        head.bias.assign(tf.constant([100.0] + [-100.0] * (head.bias.shape[0] - 1)))
    probs = policy.probabilities(tf.zeros([1, space.length], tf.int32))
    op_p, input_p = probs[1].numpy()[0], probs[0].numpy()[0]  # Decision 1: op, 0: input.
    np.testing.assert_allclose(op_p[0] / op_p[1], np.exp(2 * 1.1 / 2.5), rtol=1e-3)
    np.testing.assert_allclose(input_p[0] / input_p[1], np.exp(2 * 1.1), rtol=1e-3)


def test_update_baseline_formula():
    assert update_baseline(2.0, 4.0, 0.75) == pytest.approx(0.75 * 2.0 + 0.25 * 4.0)
    b = 0.0
    for _ in range(3):
        b = update_baseline(b, 1.0, 0.99)
    assert b == pytest.approx(1 - 0.99 ** 3)


def test_reinforce_loss_value_and_gradient_sign():
    theta = tf.Variable([0.3, -0.2])
    rewards, baseline = tf.constant([1.0, 0.0]), 0.5
    with tf.GradientTape() as tape:
        log_p = tf.nn.log_softmax(theta)
        log_probs = tf.stack([log_p[0], log_p[1]])  # Sample 0 chose 0, sample 1 chose 1.
        entropy = -tf.reduce_sum(tf.exp(log_p) * log_p)
        entropies = tf.stack([entropy, entropy])
        loss = reinforce_loss(log_probs, rewards, baseline, entropies, 0.0)
    p0 = tf.nn.softmax(theta).numpy()[0]
    expected = -0.5 * (0.5 * np.log(p0) + (-0.5) * np.log(1 - p0))
    assert loss.numpy() == pytest.approx(expected, rel=1e-5)
    grad = tape.gradient(loss, theta).numpy()
    # d/dtheta0 = -0.5 * (0.5 * (1 - p0) - 0.5 * (-p0)) = -0.25: descent raises choice 0.
    np.testing.assert_allclose(grad, [-0.25, 0.25], rtol=1e-5)
    # The entropy bonus enters with weight -w, and no gradient flows into rewards.
    assert reinforce_loss(tf.zeros(2), rewards, baseline, tf.ones(2), 0.1).numpy() == (
        pytest.approx(-0.1))
    r = tf.Variable([1.0, 2.0])
    with tf.GradientTape() as tape:
        loss = reinforce_loss(tf.constant([-1.0, -2.0]), r, 0.0, tf.zeros(2), 0.0)
    assert tape.gradient(loss, r) is None


def test_trainer_learns_toy_reward_and_updates_baseline(tmp_path):
    space = get_space("nb201")
    policy = ControllerPolicy(space, tanh_constant=2.5, op_tanh_reduce=1.0, seed=1)
    trainer = ReinforceTrainer(policy)
    probe = tf.zeros([1, space.length], tf.int32)
    p_initial = policy.probabilities(probe)[0].numpy()[0, 2]
    step = tf.function(
        lambda: trainer.train_step(lambda a: tf.cast(tf.equal(a[:, 0], 2), tf.float32)))
    baseline = 0.0
    for _ in range(40):
        metrics = step()
        baseline = update_baseline(baseline, metrics["reward_mean"].numpy(), 0.99)
        assert metrics["baseline"].numpy() == pytest.approx(baseline, rel=1e-5)
    p_final = policy.probabilities(probe)[0].numpy()[0, 2]
    assert p_final > p_initial + 0.2, (p_initial, p_final)
    assert int(trainer.steps.numpy()) == 40
    assert metrics["best_arch"].shape == (space.length,)
    assert metrics["best_reward"].numpy() == 1.0 and metrics["best_arch"].numpy()[0] == 2

    # Checkpoint round trip: policy, optimizer slots, baseline and generator.
    ckpt = tf.train.Checkpoint(controller=trainer)
    path = ckpt.save(str(tmp_path / "ckpt"))
    expected = step()
    ckpt.restore(path)
    got = step()
    for key in ("loss", "baseline", "best_arch"):
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-5)


def test_uniform_sample_is_valid_seeded_and_covers_choices():
    space = get_space("enas_micro")
    archs = uniform_sample(space, 500, seed=4).numpy()
    np.testing.assert_array_equal(archs, uniform_sample(space, 500, seed=4).numpy())
    assert archs.min() == 0
    np.testing.assert_array_equal(archs.max(axis=0), space.num_choices - 1)
    sampler = UniformSampler(space, seed=2)
    fn = tf.function(lambda: sampler.sample(3))
    a, b = fn().numpy(), fn().numpy()
    assert a.shape == (3, space.length) and not np.array_equal(a, b)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
