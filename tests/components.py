"""Components defined outside the package, used by dotted path in tests (like a lab's ``mymodule``)."""

import torch

from mei.stoppers import OptimizationStopper

TARGET = torch.linspace(-1.0, 1.0, 64).reshape(1, 1, 8, 8)


class QuadraticModel(torch.nn.Module):
    """``x -> -((t - x)**2).sum()`` per image: its maximum is at ``t``. Counts its forward calls."""

    def __init__(self, target: torch.Tensor = TARGET) -> None:
        super().__init__()
        self.register_buffer("target", target.clone())
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return -((self.target - x) ** 2).flatten(1).sum(dim=1)


class EvaluationThreshold(OptimizationStopper):
    """The README's custom stopper: stop once the evaluation reaches ``threshold``."""

    def __init__(self, threshold):
        self.threshold = threshold

    def __call__(self, current_state):
        if current_state.evaluation >= self.threshold:
            return True, None
        return False, None


class Recorder(OptimizationStopper):
    """Stops after ``n`` steps and keeps a CPU copy of every state."""

    states: list = []

    def __init__(self, n):
        self.n = n
        Recorder.states = []

    def __call__(self, current_state):
        Recorder.states.append(current_state.to_dict())
        return current_state.i_iter + 1 >= self.n, {"seen": current_state.i_iter}


class Scale:
    """Transform ``x -> factor * x``."""

    def __init__(self, factor):
        self.factor = factor

    def __call__(self, x, i_iter):
        return self.factor * x


class MaskGradient:
    """Preconditioner that zeroes the gradient on the left half of the image."""

    def __call__(self, grad, i_iter):
        grad = grad.clone()
        grad[..., : grad.shape[-1] // 2] = 0
        return grad


class NaNAfter(torch.nn.Module):
    """A model that returns NaN from step ``step`` on."""

    def __init__(self, step):
        super().__init__()
        self.step, self.calls = step, 0

    def forward(self, x):
        value = -(x**2).flatten(1).sum(dim=1)
        self.calls += 1
        return value * float("nan") if self.calls > self.step else value


class StopperOutputObjective:
    """Records what the stopper returned at every step."""

    def __call__(self, current_state):
        return current_state.stopper_output


def make_number() -> int:
    """A factory that returns something that is not a component (validation must refuse it)."""
    return 3
