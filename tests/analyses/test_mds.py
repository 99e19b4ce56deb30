"""Most discriminative stimuli (mei.analysis.mds): the objective, k-means, the adjusted Rand index, and the loop
on the demo's typed population, whose functional cell types are known."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mei.analysis.mds import (
    AlignedUnits,
    adjusted_rand_index,
    alignment_offsets,
    initial_clusters,
    kmeans,
    most_discriminative_stimuli,
    translate,
)
from mei.demo.population import PopulationModel, make_population, make_typed_population
from mei.modules import EnsembleModel
from mei.targets.clusters import ClusterContrastiveObjective, membership


def config(size: int, norm: float = 24.0, steps: int = 100) -> dict:
    return {"device": "cpu", "shape": [1, 1, size, size],
            "initial": {"path": "mei.initial.RandomNormal", "kwargs": {"std": 0.1}},
            "optimizer": {"path": "torch.optim.Adam", "kwargs": {"lr": 0.1}},
            "stopper": {"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": steps}},
            "postprocessing": {"path": "mei.postprocessing.ChangeNorm", "kwargs": {"norm": norm}}}


class Linear(nn.Module):
    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.weight.T


def test_membership_averages_each_cluster_and_refuses_empty_clusters():
    assert membership([0, 1, 1]).tolist() == [[1.0, 0.0], [0.0, 0.5], [0.0, 0.5]]
    with pytest.raises(ValueError, match=r"cluster\(s\) \[1\] have no neuron"):
        membership([0, 2, 2])
    with pytest.raises(ValueError, match="must be >= 0"):
        membership([0, -1])


def test_the_objective_is_the_log_softmax_of_the_cluster_means_over_the_temperature():
    model = Linear(torch.eye(4))  # neuron i answers with pixel i
    objective = ClusterContrastiveObjective(model, [0, 0, 1, 2], temperature=2.0)
    x = torch.tensor([[4.0, 2.0, 1.0, 0.0], [0.0, 0.0, 5.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    means = torch.tensor([[3.0, 1.0, 0.0], [0.0, 5.0, 1.0], [1.0, 1.0, 1.0]]) / 2.0
    expected = torch.log_softmax(means, dim=1).diagonal() + math.log(3)
    assert torch.allclose(objective(x), expected)
    assert float(objective(x).detach()[2]) == pytest.approx(0.0, abs=1e-6)  # equal drive scores 0
    with pytest.raises(ValueError, match="the input holds 2 images for 3 clusters"):
        objective(x[:2])
    with pytest.raises(ValueError, match="temperature must be > 0"):
        ClusterContrastiveObjective(model, [0, 1, 1, 1], temperature=0)
    with pytest.raises(ValueError, match="at least 2 clusters"):
        ClusterContrastiveObjective(model, [0, 0, 0, 0])


def test_the_objective_scales_each_neuron():
    objective = ClusterContrastiveObjective(Linear(torch.eye(2)), [0, 1], temperature=1.0,
                                            scale=torch.tensor([2.0, 4.0]))
    assert torch.allclose(objective.cluster_means(torch.tensor([[2.0, 4.0], [1.0, 1.0]])),
                          torch.tensor([[1.0, 1.0], [0.5, 0.25]]))


def test_adjusted_rand_index_known_values():
    assert adjusted_rand_index([0, 0, 1, 1], ["a", "a", "b", "b"]) == 1.0
    assert adjusted_rand_index([1, 1, 0, 0], [0, 0, 1, 1]) == 1.0  # names do not matter
    # contingency [[2, 1], [0, 1]]: index 1, expected 2 * 3 / 6 = 1, max 2.5 -> 0; a hand-checked case
    assert adjusted_rand_index([0, 0, 0, 1], [0, 0, 1, 1]) == pytest.approx(0.0)
    assert adjusted_rand_index([0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 1, 1]) == pytest.approx(4 / 9)  # 3, 21/15, 5


def test_kmeans_finds_separated_groups_deterministically():
    generator = torch.Generator().manual_seed(3)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    points = torch.cat([c + 0.3 * torch.randn(7, 2, generator=generator) for c in centres])
    labels = kmeans(points, 3, seed=1)
    assert labels.tolist() == [0] * 7 + [1] * 7 + [2] * 7
    assert torch.equal(kmeans(points, 3, seed=1), labels)
    with pytest.raises(ValueError, match="n_clusters must be between 1"):
        kmeans(points, 22)


@pytest.fixture(scope="module")
def typed():
    population = make_typed_population(6, height=24, width=24, seed=0)
    meis = (population.filters[:, 0] * 24.0)[:, None]  # the ground truth MEIs: each filter at norm 24
    return population, PopulationModel(population), meis


def corrupted(types: list[str], fraction: float, seed: int) -> torch.Tensor:
    names = sorted(set(types), key=types.index)
    labels = torch.tensor([names.index(t) for t in types])
    generator = torch.Generator().manual_seed(seed)
    flip = torch.rand(len(labels), generator=generator) < fraction
    labels[flip] = torch.randint(len(names), (int(flip.sum()),), generator=generator)
    return labels


@pytest.mark.slow
def test_mds_recovers_the_true_types_from_a_corrupted_start(typed):
    population, model, meis = typed
    start = corrupted(population.types, 0.35, seed=1)
    assert adjusted_rand_index(start, population.types) < 0.7
    result = most_discriminative_stimuli(model, meis, 5, config(24), assignments=start)
    assert result.converged and result.history[-1]["n_changed"] == 0 and len(result.history) >= 2
    assert adjusted_rand_index(result.assignments, population.types) >= 0.9
    assert bool((result.own_versus_other() > 0).all())  # each stimulus drives its members more than any other
    assert tuple(result.stimuli.shape) == (result.n_clusters, 1, 24, 24)
    assert torch.allclose(result.stimuli.flatten(1).norm(dim=1), torch.full((result.n_clusters,), 24.0))


@pytest.mark.slow
def test_mds_from_the_meis_matches_the_true_types(typed):
    population, model, meis = typed
    with torch.no_grad():
        responses = model(meis)
    assert adjusted_rand_index(initial_clusters(meis, 5), population.types) > 0.5  # the MEI pixels
    assert adjusted_rand_index(initial_clusters(meis, 5, responses=responses), population.types) == 1.0
    result = most_discriminative_stimuli(model, meis, 5, config(24), initial="meis")
    assert result.converged and adjusted_rand_index(result.assignments, population.types) >= 0.9
    result = most_discriminative_stimuli(model, meis, 5, config(24))  # from the responses to the MEIs
    assert result.converged
    assert adjusted_rand_index(result.assignments, population.types) >= 0.9
    assert bool((result.own_versus_other() > 0).all())
    winners = result.responses.argmax(0)
    assert torch.equal(winners, result.assignments)


class FrameModel(nn.Module):
    """A video model: the population applied to every frame, output (images, neurons, time)."""

    def __init__(self, population) -> None:
        super().__init__()
        self.population = population

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        rates = self.population.rates(x.movedim(2, 1).reshape(b * t, c, h, w))
        return rates.reshape(b, t, -1).movedim(1, 2)


@pytest.mark.slow
def test_mds_on_movies_and_on_an_ensemble(typed):
    population, model, meis = typed
    start = corrupted(population.types, 0.2, seed=2)
    movies = meis[:, :, None].expand(-1, -1, 3, -1, -1) / math.sqrt(3)
    video_config = {**config(24, norm=24.0, steps=60), "shape": [1, 1, 3, 24, 24]}
    result = most_discriminative_stimuli(FrameModel(population), movies, 5, video_config, assignments=start,
                                         reducer={"path": "mei.reducers.MeanOverTime", "kwargs": {}})
    assert tuple(result.stimuli.shape) == (result.n_clusters, 1, 3, 24, 24)
    assert adjusted_rand_index(result.assignments, population.types) >= 0.9
    ensemble = EnsembleModel(model, PopulationModel(population))
    result = most_discriminative_stimuli(ensemble, meis, 5, config(24, steps=60), assignments=start)
    assert adjusted_rand_index(result.assignments, population.types) >= 0.9


def test_translate_moves_each_image_by_whole_pixels_and_fills_zeros():
    images = torch.zeros(2, 1, 3, 4, 5)
    images[0, 0, :, 1, 1] = 1.0
    images[1, 0, :, 2, 4] = 2.0
    moved = translate(images, torch.tensor([[2, 1], [1, -1]]))  # (dx, dy): right 2 and down 1; right 1, up 1
    assert moved.shape == images.shape
    assert moved[0, 0, :, 2, 3].tolist() == [1.0] * 3 and float(moved[0].sum()) == 3.0
    assert float(moved[1].abs().sum()) == 0.0  # moved out of the frame: nothing wraps around
    assert torch.equal(translate(moved[:1], torch.tensor([[-2, -1]])), images[:1])
    assert alignment_offsets(torch.tensor([[2.0, 1.6], [0.4, 0.0]]), 4, 5).tolist() == [[0, 0], [-2, -2]]
    with pytest.raises(ValueError, match="1 offsets for 2 images"):
        translate(images, torch.tensor([[0, 0]]))


def test_aligned_units_answer_to_the_input_moved_onto_their_own_field():
    population = make_population(6, 16, 16, seed=3, calibration_images=200)
    offsets = torch.tensor([[0, 0], [3, -2], [-4, 1]])
    x = torch.randn(4, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    aligned = AlignedUnits(PopulationModel(population), offsets, units=[5, 0, 2])(x)
    expected = torch.stack([population.rates(translate(x, offset.expand(4, 2)))[:, unit]
                            for offset, unit in zip(offsets, [5, 0, 2], strict=True)], 1)
    assert aligned.shape == (4, 3) and torch.allclose(aligned, expected)
    video = AlignedUnits(FrameModel(population), offsets, units=[5, 0, 2])(x[:, :, None].expand(-1, -1, 2, -1, -1))
    assert video.shape == (4, 3, 2) and torch.allclose(video[..., 1], expected)  # units along dim 1, then time
    with pytest.raises(ValueError, match="2 units for 3 offsets"):
        AlignedUnits(PopulationModel(population), offsets, units=[0, 1])


def test_a_demo_model_moves_its_readouts_as_moving_the_input_would():
    from mei.analysis.mds import _own_alignment
    from mei.demo.models import build_model

    model = build_model(5, 32, 32, seed=0, channels=4, kernel_size=5).eval()
    with torch.no_grad():  # masks and images away from the borders, where padding would tell the two apart
        model.readout.mask.zero_()
        model.readout.mask[:, 12:20, 12:20] = torch.rand(5, 8, 8, generator=torch.Generator().manual_seed(1))
    x = torch.zeros(3, 1, 32, 32)
    x[:, :, 10:22, 10:22] = torch.randn(3, 1, 12, 12, generator=torch.Generator().manual_seed(2))
    offsets, units = torch.tensor([[0, 0], [2, -3], [-1, 2]]), [4, 0, 2]
    moved = model.aligned(offsets, units)
    assert torch.allclose(moved(x), AlignedUnits(model, offsets, units)(x), atol=1e-5)
    ensemble = _own_alignment(EnsembleModel(model, model), offsets, units)  # an ensemble of moved members
    assert isinstance(ensemble, EnsembleModel) and torch.allclose(ensemble(x), moved(x))
    assert _own_alignment(PopulationModel(make_population(3, 8, 8, calibration_images=50)), offsets, None) is None


@pytest.fixture(scope="module")
def demo_population():
    """The demo's population (48 cells at random positions, 36 x 64) with its true filters as MEIs."""
    norm = math.floor(math.sqrt(36 * 64 - 1) * 1e4) / 1e4  # the demo's MEI norm (the natural images')
    typed = make_population(48, 36, 64, seed=0, typed=True)
    untyped = make_population(48, 36, 64, seed=0)
    return norm, typed, untyped


@pytest.mark.slow
def test_aligned_mds_recovers_the_demo_populations_types(demo_population):
    norm, population, untyped = demo_population
    settings = {**config(36, norm=norm, steps=50), "shape": [1, 1, 36, 64]}
    meis = (population.filters[:, 0] * norm)[:, None]
    result = most_discriminative_stimuli(PopulationModel(population), meis, 7, settings, align="meis")
    assert adjusted_rand_index(result.assignments, population.types) >= 0.9
    assert bool((result.own_versus_other() > 0).all())  # members answer their own stimulus best
    assert bool((result.stimulus_selectivity() > 0).all())  # each stimulus drives its members more than others
    assert result.offsets is not None and result.offsets.shape == (48, 2)
    assert tuple(result.stimuli.shape) == (result.n_clusters, 1, 36, 64)
    # without the alignment one stimulus cannot drive a type whose members sit at different places
    plain = most_discriminative_stimuli(PopulationModel(population), meis, 7, settings)
    assert adjusted_rand_index(plain.assignments, population.types) < 0.5
    # nor can it, aligned, group cells whose orientation and phase are random: kinds are not functional types
    untyped_meis = (untyped.filters[:, 0] * norm)[:, None]
    kinds = most_discriminative_stimuli(PopulationModel(untyped), untyped_meis, 3, settings, align="meis")
    assert adjusted_rand_index(kinds.assignments, untyped.kinds) < 0.5


def test_mds_refuses_bad_input(typed):
    _, model, meis = typed
    with pytest.raises(ValueError, match="max_iterations must be >= 1"):
        most_discriminative_stimuli(model, meis, 5, config(24), max_iterations=0)
    with pytest.raises(ValueError, match="3 assignments for 30 neurons"):
        most_discriminative_stimuli(model, meis, 5, config(24), assignments=[0, 1, 2])
    with pytest.raises(ValueError, match="initial must be 'responses' or 'meis'"):
        most_discriminative_stimuli(model, meis, 5, config(24), initial="pixels")
    with pytest.raises(ValueError, match="29 MEIs for a model with 30 units"):
        most_discriminative_stimuli(model, meis[:29], 5, config(24))
    with pytest.raises(ValueError, match="align must be 'meis' or a"):
        most_discriminative_stimuli(model, meis, 5, config(24), align="rf")
    with pytest.raises(ValueError, match="2 receptive-field centres for 30 neurons"):
        most_discriminative_stimuli(model, meis, 5, config(24), align=torch.zeros(2, 2))


@pytest.mark.slow
def test_a_fused_ensemble_gives_the_stimuli_of_the_plain_one():
    from mei.demo.models import build_model

    members = [build_model(6, 12, 12, seed=s, channels=4, kernel_size=5).eval().requires_grad_(False)
               for s in (1, 2)]
    ensemble = EnsembleModel(*members)
    meis = torch.randn(6, 1, 12, 12, generator=torch.Generator().manual_seed(0))
    settings = config(12, norm=6.0, steps=5)
    plain = most_discriminative_stimuli(ensemble, meis, 2, settings, assignments=[0, 0, 0, 1, 1, 1], max_iterations=1)
    fused = most_discriminative_stimuli(ensemble, meis, 2, {**settings, "batch": {"fuse_ensemble": True}},
                                        assignments=[0, 0, 0, 1, 1, 1], max_iterations=1)
    assert torch.allclose(plain.stimuli, fused.stimuli, atol=1e-4)
    assert plain.history[0]["scores"] == pytest.approx(fused.history[0]["scores"], abs=1e-4)
