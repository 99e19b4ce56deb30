"""Training the demo model: the Poisson loss falls and the model learns the neurons."""

import torch

from mei.demo.models import DemoModel, build_model
from mei.demo.population import make_population, natural_images
from mei.demo.training import correlation_per_neuron, poisson_loss, predict, train_model


def test_poisson_loss_is_smallest_at_the_true_rate():
    counts = torch.tensor([[0.0, 2.0, 5.0]])
    at_truth = poisson_loss(counts + 1e-3, counts)
    assert at_truth < poisson_loss(counts + 1.0, counts)
    assert at_truth < poisson_loss(counts * 0.5 + 1e-3, counts)


def test_model_shapes_positive_rates_and_seeded_init():
    model = build_model(5, 12, 16, seed=3, channels=4, kernel_size=5)
    rates = model(torch.randn(7, 1, 12, 16))
    assert isinstance(model, DemoModel) and rates.shape == (7, 5) and bool((rates > 0).all())
    same = build_model(5, 12, 16, seed=3, channels=4, kernel_size=5)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), same.state_dict().values(), strict=True))


def test_training_reduces_the_loss_and_predicts_held_out_responses():
    population = make_population(4, 16, 20, seed=2, calibration_images=300)
    images = natural_images(700, 16, 20, seed=4)
    counts = population.responses(images, seed=5)
    torch.manual_seed(0)
    result = train_model(images[:600], counts[:600], images[600:], counts[600:], seed=1, epochs=4,
                         model_kwargs={"channels": 4, "kernel_size": 7})
    assert len(result.train_loss) == len(result.val_loss) == 4
    assert result.train_loss[-1] < result.train_loss[0] - 0.05
    untrained = build_model(4, 16, 20, seed=1, channels=4, kernel_size=7)
    assert result.val_loss[-1] < float(poisson_loss(predict(untrained, images[600:]), counts[600:])) - 0.05
    assert result.val_correlation > 0.2
    assert result.val_correlation == float(correlation_per_neuron(predict(result.model, images[600:]),
                                                                  counts[600:]).mean())
