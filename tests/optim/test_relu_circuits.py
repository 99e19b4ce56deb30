"""RedirectedReLU passes gradient where ReLU would not; layer swapping; expanded weights of a known network."""

import pytest
import torch
from torch import nn

import mei.optim as opt
from mei.optim import circuits, models, relu


def test_forward_is_exactly_relu():
    x = torch.randn(3, 4, 5)
    assert torch.equal(relu.RedirectedReLU()(x), torch.relu(x))


def test_dead_unit_gets_gradient_only_with_redirection():
    x = -torch.rand(2, 3) - 0.1  # all negative: every ReLU unit is dead
    plain = torch.autograd.grad(-torch.relu(x.requires_grad_()).sum(), x)[0]
    redirected = torch.autograd.grad(-relu.redirected_relu(x).sum(), x)[0]
    assert torch.equal(plain, torch.zeros_like(x))
    # maximizing the output (loss = -output): the gradient says "raise x", which is passed on
    assert torch.equal(redirected, -torch.ones_like(x))
    # minimizing the output of a negative input (pushing it further down) stays blocked
    assert torch.equal(torch.autograd.grad(relu.redirected_relu(x).sum(), x)[0], torch.zeros_like(x))


def test_live_images_keep_the_plain_relu_gradient():
    x = torch.tensor([[-1.0, 2.0], [-1.0, -2.0]], requires_grad=True)  # image 0 alive, image 1 dead
    grad = torch.autograd.grad(-relu.redirected_relu(x).sum(), x)[0]
    assert torch.equal(grad, torch.tensor([[0.0, -1.0], [-1.0, -1.0]]))


def test_replace_and_swap_layers_restore_the_originals():
    model = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU(inplace=True), nn.Sequential(nn.ReLU()))
    originals = [model[1], model[2][0]]
    with relu.swapped_layers(model):
        assert isinstance(model[1], relu.RedirectedReLU) and isinstance(model[2][0], relu.RedirectedReLU)
    assert [model[1], model[2][0]] == originals
    with pytest.raises(ZeroDivisionError), relu.swapped_layers(model):
        _ = 1 / 0
    assert model[1] is originals[0]
    replaced = relu.replace_layers(model, nn.ReLU, nn.Identity)
    assert sorted(replaced) == ["1", "2.0"] and isinstance(model[1], nn.Identity)


def test_replace_layers_transfers_constructor_values():
    model = nn.Sequential(nn.MaxPool2d(3, stride=2, padding=1))
    relu.replace_layers(model, nn.MaxPool2d, nn.AvgPool2d, transfer_vars=True)
    assert isinstance(model[0], nn.AvgPool2d)
    assert (model[0].kernel_size, model[0].stride, model[0].padding) == (3, 2, 1)


def test_expanded_weights_of_one_conv_are_its_kernel():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Identity(), nn.Conv2d(4, 5, 3, padding=1))
    weights = circuits.extract_expanded_weights(model, model[1], model[2], crop_shape=3,
                                                model_input=torch.zeros(1, 3, 9, 9))
    assert weights.shape == (5, 4, 3, 3)
    assert torch.allclose(weights, model[2].weight, atol=1e-6)


def test_expanded_weights_through_two_convs_compose():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Identity(), nn.Conv2d(2, 3, 1, bias=False), nn.Conv2d(3, 4, 1, bias=False))
    weights = circuits.extract_expanded_weights(model, "0", "2", model_input=torch.zeros(1, 2, 5, 5))
    product = model[2].weight[:, :, 0, 0] @ model[1].weight[:, :, 0, 0]
    assert torch.allclose(weights[:, :, 2, 2], product, atol=1e-6)
    assert torch.count_nonzero(weights[:, :, 0, 0]) == 0


def test_zoo_refuses_pretrained_and_builds_identical_models():
    with pytest.raises(models.PretrainedWeightsUnavailable, match="downloads nothing"):
        models.googlenet(pretrained=True)
    with pytest.raises(RuntimeError, match=r"alexnet\(pretrained=False\)"):
        models.alexnet(pretrained=True)
    a, b = models.googlenet(), models.googlenet(use_linear_modules_only=True)
    assert torch.equal(a.mixed4b.conv_1x1[0].weight, b.mixed4b.conv_1x1[0].weight)
    assert isinstance(b.mixed4a_relu, nn.Identity) and isinstance(b.pool3, nn.AvgPool2d)
    x = torch.rand(1, 3, 64, 64)
    assert a(x).shape == (1, 1008) and models.alexnet()(torch.rand(1, 3, 227, 227)).shape == (1, 1000)


def test_get_model_layers_names_every_target_in_order():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Sequential(nn.Conv2d(4, 4, 1), nn.Dropout()))
    assert opt.get_model_layers(model) == ["0", "1", "2", "2.0", "2.1"]
    assert opt.models.get_model_layers(model, nn.Conv2d) == ["0", "2.0"]
    assert opt.get_model_layers(model, (nn.ReLU, nn.Dropout)) == ["1", "2.1"]
    zoo = opt.models.googlenet()
    assert "mixed4a" in opt.get_model_layers(zoo) and "mixed4b_relu" in opt.get_model_layers(zoo)


def test_skip_layers_takes_layers_out_and_restores_them():
    model = nn.Sequential(nn.Conv2d(1, 2, 1), nn.Dropout(p=1.0), nn.BatchNorm2d(2)).train()
    x = torch.randn(2, 1, 3, 3, generator=torch.Generator().manual_seed(0))
    conv = model[0](x)
    removed = opt.skip_layers(model, (nn.Dropout, nn.BatchNorm2d))
    assert sorted(removed) == ["1", "2"] and isinstance(model[1], opt.SkipLayer)
    assert torch.equal(model(x), conv)  # dropout with p=1 and training batch norm would both change it
    assert opt.SkipLayer(8, affine=True)(x, "ignored", key=1) is x
    opt.relu.restore_layers(model, removed)
    assert isinstance(model[1], nn.Dropout) and isinstance(model[2], nn.BatchNorm2d)
