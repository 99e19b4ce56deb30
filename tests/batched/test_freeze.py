"""Per-image stopping: a finished image is frozen exactly while the others go on."""

import pytest
import torch

from mei.optimization import MEI, optimize
from mei.postprocessing import ChangeNorm
from mei.stoppers import EvaluationPlateau, NumIterations, PerImageStopper
from tests.batched.helpers import tiny_cnn


class Snapshots:
    """Tracker keeping each step's post-processed input and preconditioned gradient."""

    def __init__(self):
        self.inputs, self.grads = [], []

    def track(self, state):
        self.inputs.append(state.post_processed_input.clone())
        self.grads.append(state.preconditioned_grad.clone())


def objective():
    net = tiny_cnn(n_units=2)
    return lambda x: net(x)[:, 1]


@pytest.mark.parametrize("optimizer", [
    lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.1),
    lambda p: torch.optim.Adam(p, lr=0.05, weight_decay=0.1),
])
def test_a_finished_image_never_moves_again_despite_momentum_and_weight_decay(optimizer):
    func, initial = objective(), torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    mei = MEI(func, initial, optimizer, postprocessing=ChangeNorm(2.0))
    stopper = PerImageStopper([NumIterations(2), NumIterations(7), NumIterations(4)])
    snapshots = Snapshots()
    optimize(mei, stopper, snapshots)
    assert mei.i_iter == 7
    assert stopper.stopped_at == [1, 6, 3]
    for k, last in [(0, 1), (2, 3)]:
        for step in range(last + 1, 7):
            assert torch.equal(snapshots.inputs[step][k], snapshots.inputs[last][k]), (k, step)
            assert not snapshots.grads[step][k].any()
        assert torch.equal(mei.current_input[k], snapshots.inputs[last][k])
        alone = MEI(func, initial[k:k + 1], optimizer, postprocessing=ChangeNorm(2.0))
        optimize(alone, NumIterations(last + 1))
        torch.testing.assert_close(mei.current_input[k:k + 1], alone.current_input, atol=1e-6, rtol=1e-6)
    assert not torch.equal(snapshots.inputs[6][1], snapshots.inputs[5][1])  # the last one kept going


def test_each_stopper_sees_its_own_image_view():
    seen = []

    class Spy(NumIterations):
        def __call__(self, state):
            seen.append((state.i_iter, state.input_.shape, state.evaluation))
            return super().__call__(state)

    func = objective()
    initial = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    mei = MEI(func, initial, lambda p: torch.optim.SGD(p, lr=0.1))
    optimize(mei, PerImageStopper([Spy(1), Spy(3)]))
    expected = func(initial).tolist()
    assert [s[0] for s in seen] == [0, 0, 1, 2]
    assert all(shape == (1, 1, 8, 8) for _, shape, _ in seen)
    assert seen[0][2] == pytest.approx(expected[0], rel=1e-6)
    assert seen[1][2] == pytest.approx(expected[1], rel=1e-6)


def test_per_image_stopper_rejects_a_batch_of_another_size():
    mei = MEI(objective(), torch.zeros(3, 1, 8, 8), lambda p: torch.optim.SGD(p, lr=0.1))
    with pytest.raises(ValueError, match="2 stoppers for a batch of 3 images"):
        optimize(mei, PerImageStopper([NumIterations(1), NumIterations(1)]))


def test_freeze_needs_one_flag_per_image():
    mei = MEI(objective(), torch.zeros(3, 1, 8, 8), lambda p: torch.optim.SGD(p, lr=0.1))
    with pytest.raises(ValueError, match=r"one flag per image \(3\), got 2"):
        mei.freeze([True, False])


def test_per_image_stopper_reports_the_longest_fixed_step_count():
    assert PerImageStopper([NumIterations(3), NumIterations(5)]).num_iterations == 5
    assert PerImageStopper([NumIterations(3), EvaluationPlateau()]).num_iterations is None
