"""meitorch's README usage, run as written with ``meitorch`` replaced by ``mei.meitorch`` and small ``iter_n``.

Two fixes the README needs on any package: ``MEI(operation=operation(), ...)`` calls the function (it must be
passed itself), and the second operation reads an undefined ``losses["elbo"]`` (its ``model_losses`` is meant).
"""

import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn

from mei.meitorch.analyze import Analyze
from mei.meitorch.mei import MEI
from mei.meitorch.tools.schedules import LinearSchedule, RandomSchedule
from mei.meitorch.tools.transformations import GenerativeConvNet

device = "cpu"


def load_your_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 9, padding=4), nn.ReLU(), nn.AvgPool2d(4), nn.Flatten(),
                         nn.Linear(4 * 10 * 10, 3)).requires_grad_(False)


model = load_your_model()


def operation(inputs):
    outputs = model(inputs)
    activation = outputs[:, 0]
    activation = torch.mean(activation, dim=0)
    loss = -activation
    losses = dict(
        objective=loss,
        activation=activation,
    )
    return losses


def compute_loss(inputs, outputs):
    return dict(elbo=(inputs ** 2).mean() - outputs.mean())


def operation_with_more_losses(inputs):
    outputs = model(inputs)
    activation = outputs[:, 0]
    activation = torch.mean(activation, dim=0)
    model_losses = compute_loss(inputs, outputs)
    regularization = model_losses["elbo"] * 0.1
    loss = -activation + regularization
    losses = dict(
        objective=loss,
        activation=activation,
        elbo_regularization=regularization,
    )
    return losses


image_mei_config = dict(
    iter_n=2,         # number of optimization steps
    n_samples=1,      # number of samples per batch
    save_every=1,     # save copy of image every n iterations
    bias=0,           # bias of the distribution the image is sampled from
    scale=1,          # scaling of the distribution the image is sampled from
    diverse=False,    # whether to use diverse sampling
    diverse_params=dict(
        div_metric='euclidean',  # distance metric for diversity (euclidean, cosine, correlation)
        div_linkage='minimum',  # linkage criterion for diversity (minimum, average)
        div_weight=1.1,         # weight of diversity loss
    ),
    scaler=1.01,          # scaling of the image before each step
    jitter=3,             # size of translational jittering before each step
    train_norm=1,        # norm adjustment during step
    norm=1,              # norm adjustment after step
    optimizer="rmsprop",    # optimizer (sgd, mei, rmsprop, adam)
    optimizer_params=dict(
        lr=0.03,            # learning rate
        weight_decay=1e-6,  # weight decay
    ),
    precond=0.3,            # strength of gradient preconditioning filter falloff (float or schedule)
    blur='gaussian',        # denoiser type (gaussian, tv, bilateral)
    blur_params=dict(
        kernel_size=3,
        sigma=LinearSchedule(0.1, 0.01)
    ),
)

var_mei_config = dict(
    iter_n=1,              # number of optimization steps
    save_every=100,        # save image every n iterations
    bias=0,                # bias of the distribution the image is sampled from
    scale=1,              # scaling of the distribution the image is sampled from
    scaler=RandomSchedule(1, 1.025),  # scaling of the image (float or schedule)
    jitter=None,                      # size of translational jittering
    optimizer="rmsprop",        # optimizer (sgd, mei, rmsprop, adam)
    optimizer_params=dict(
        lr=0.04,                # learning rate
        weight_decay=1e-7,      # weight decay
    ),
    precond=0.4,            # strength of gradient preconditioning filter
    distribution='normal',      # distribution of the MEI (normal, laplace)
    n_samples_per_batch=(128,),  # number of samples per batch (tuple)
    fixed_stddev=0.4,           # fixed stddev of the distribution, None for learned stddev
)

tranformation_mei_config = dict(
    iter_n=3,            # number of optimization steps (150 in the README)
    save_every=1,        # save image every n iterations
    bias=0,              # bias of the distribution the image is sampled from
    scale=1,             # scaling of the distribution the image is sampled from
    n_samples=128,       # number of samples per batch
    scaler=None,            # scaling of the image (float or schedule)
    jitter=None,            # size of translational jittering
    train_norm=None,        # norm adjustment during step
    optimizer="mei",        # optimizer (sgd, mei, rmsprop, adam)
    optimizer_params=dict
    (
        lr=0.02,            # learning rate
        weight_decay=1e-5,  # weight decay
    ),
    precond=0.4,            # strength of gradient preconditioning filter
    transform=GenerativeConvNet(hidden_sizes=[1], fixed_stddev=0.6, kernel_size=9, activation=torch.nn.ReLU(),
                                activate_output=False, shape=(1, 40, 40))
)


def test_the_three_modes_and_the_analysis_run_as_written(tmp_path):
    mei = MEI(operation=operation, shape=(1, 40, 40), device=device)
    results = [
        mei.generate_pixel_mei(config=image_mei_config),
        mei.generate_variational_mei(config=var_mei_config),
        mei.generate_transformation_mei(config=tranformation_mei_config),
    ]
    assert [tuple(r.mei.shape) for r in results] == [(1, 1, 40, 40), (1, 1, 40, 40), (128, 1, 40, 40)]
    assert [len(r.losses["activation"]) for r in results] == [2, 1, 3]
    assert results[0].mei.norm().item() == pytest.approx(1.0, rel=1e-5)  # norm=1 after each step
    for result in results:
        result.plot_losses(show=False, save_path=None, ranges=None)
        result.plot_image_and_losses(save_path=None, ranges=None)
        result.plot_spatial_frequency_spectrum()
    similarity = Analyze(*results).similarity()
    assert similarity.shape == (130, 130)
    plt.close("all")


def test_the_operation_with_more_losses_records_them_and_the_activation_rises():
    mei = MEI(operation=operation_with_more_losses, shape=(1, 40, 40), device=device)
    result = mei.generate_pixel_mei(config={**image_mei_config, "iter_n": 30, "jitter": 0}, seed=0)
    assert list(result.losses) == ["objective", "activation", "elbo_regularization"]
    random_images = torch.randn(100, 1, 40, 40, generator=torch.Generator().manual_seed(0))
    random_images = random_images / random_images.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    best_random = model(random_images)[:, 0].max().item()
    assert result.losses["activation"][-1] > max(best_random, result.losses["activation"][0]) + 0.01
    assert result.losses["objective"][-1] < result.losses["objective"][0]
