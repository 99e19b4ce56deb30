"""The usage examples of the two seed documents, run as written against this package.

Each example is kept verbatim except for the lines marked ``# ADJUSTED``: imports point at ``mei``, and the
pretrained torchvision/captum networks (which cannot be downloaded here) become the random-weight stand-ins
of :mod:`mei.optim.models`, whose ``pretrained=True`` raises a clear error instead of downloading. The tests
then check that each example did what its document says.
"""

import pytest
import torch

from mei.optim import models

# ----------------------------------------------------------------------------- activation maximization (002)
ACT_MAX_EXAMPLE = '''
import torch                        # tensor creation
from mei.optim import models        # ADJUSTED: was `import torchvision.models as models`
import mei.act_max_util as amu      # ADJUSTED: was `import act_max_util as amu`
# import cv2                        # display results (the display lines are commented out in the document)

alexnet = models.alexnet(pretrained=False)  # ADJUSTED: pretrained=True

input = torch.randn(3, 227, 227)
input = input.unsqueeze(0)
# input dimmensions become (1, 3, 227, 227)
input.requires_grad_(True)

activation_dictionary = {}
layer_name = 'classifier_final'

alexnet.classifier[-1].register_forward_hook(amu.layer_hook(activation_dictionary, layer_name))

steps = 100                 # perform 100 iterations
unit = 130                  # flamingo class of Imagenet
alpha = torch.tensor(100)   # learning rate (step size)
verbose = True              # print activation every step
L2_Decay = True             # enable L2 decay regularizer
Gaussian_Blur = True        # enable Gaussian regularizer
Norm_Crop = True            # enable norm regularizer
Contrib_Crop = True         # enable contribution regularizer

output = amu.act_max(network=alexnet,
                input=input,
                layer_activation=activation_dictionary,
                layer_name=layer_name,
                unit=unit,
                steps=steps,
                alpha=alpha,
                verbose=verbose,
                L2_Decay=L2_Decay,
                Gaussian_Blur=Gaussian_Blur,
                Norm_Crop=Norm_Crop,
                Contrib_Crop=Contrib_Crop,
                )

final_image = amu.image_converter(output.squeeze(0))
final_image = final_image * 255
'''

# ------------------------------------------------------------------------------------ captum.optim (004)
GETTING_STARTED_EXAMPLE = '''
import torch
import mei.optim as opt  # ADJUSTED: was `import captum.optim as opt`

device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")

model = opt.models.googlenet(pretrained=False).to(device)  # ADJUSTED: pretrained=True

loss_fn = opt.loss.ChannelActivation(model.mixed4a, 465)

image = opt.images.NaturalImage((224, 224)).to(device)
transforms = opt.transforms.TransformationRobustness()

def visualize(model, loss_fn, image, transforms):
    obj = opt.InputOptimization(model, loss_fn, image, transforms)
    history = obj.optimize()
    image().show()

visualize(model, loss_fn, image, transforms)
'''

CIRCUITS_EXAMPLE = '''
import mei.optim as opt  # ADJUSTED: was `import captum.optim as opt`
import torch
import torch.nn.functional as F

device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")


# Load InceptionV1 model with nonlinear layers replaced by their linear equivalents
linear_model = (
    opt.models.googlenet(pretrained=False, use_linear_modules_only=True)  # ADJUSTED: pretrained=True
    .to(device)
    .eval()
)
model = opt.models.googlenet(pretrained=False).to(device).eval()  # ADJUSTED: pretrained=True


def visualize(model, loss_fn, image):
    transforms = opt.transforms.TransformationRobustness()
    obj = opt.InputOptimization(model, loss_fn, image, transforms)
    history = obj.optimize(opt.optimization.n_steps(256, True), lr=0.024)
    return image().detach()

# Extract expanded weights
W_4a_4b = opt.circuits.extract_expanded_weights(
    linear_model, linear_model.mixed4a_relu, linear_model.mixed4b_relu, 5
)

# Create heatmap image
W_4a_4b_hm = opt.weights_to_heatmap_2d(W_4a_4b[443, 308, ...] / W_4a_4b[443, ...].max())
hm_img = F.interpolate(W_4a_4b_hm[None, :], size=(224, 224), mode="nearest-exact")

image = opt.images.NaturalImage((224, 224), batch=2).to(device)
loss_fn = opt.loss.NeuronActivation(model.mixed4a, 308, batch_index=0)
loss_fn += opt.loss.NeuronActivation(model.mixed4b_relu, 443, batch_index=1)
img = visualize(model, loss_fn, image)
img_set = torch.cat([img[0:1], hm_img, img[1:2]])

opt.show(img_set, images_per_row=3, figsize=(15, 10))
'''


def _run(code: str) -> dict:
    namespace: dict = {"__name__": "seed_example"}
    exec(compile(code, "<seed example>", "exec"), namespace)
    return namespace


@pytest.fixture
def seeded_torch():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        yield


def test_pretrained_networks_fail_clearly_instead_of_downloading():
    for name in ("alexnet", "googlenet"):
        message = f"{name}\\(pretrained=True\\).*downloads nothing"
        with pytest.raises(models.PretrainedWeightsUnavailable, match=message):
            getattr(models, name)(pretrained=True)


def test_act_max_example(seeded_torch, capsys):
    ns = _run(ACT_MAX_EXAMPLE)
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 100 and printed[0].startswith("step 0: activation")  # verbose: every step
    output, start = ns["output"], ns["input"]
    assert output.shape == (1, 3, 227, 227)
    net = ns["alexnet"].eval()
    with torch.no_grad():
        assert net(output)[0, 130] > net(start)[0, 130] + 1.0  # the flamingo unit went up
    final = ns["final_image"]
    assert final.shape == (227, 227, 3) and final.min() >= 0 and final.max() <= 255
    # the crops left their mark: a good share of pixels is exactly zero in every channel
    assert (output[0] == 0).all(0).float().mean() > 0.2


@pytest.mark.slow
def test_getting_started_example(seeded_torch):
    ns = _run(GETTING_STARTED_EXAMPLE)
    image, model = ns["image"], ns["model"]
    rendered = image()
    assert rendered.shape == (1, 3, 224, 224) and rendered.min() >= 0 and rendered.max() <= 1
    fresh = ns["opt"].images.NaturalImage((224, 224)).to(ns["device"])
    channel = ns["opt"].loss.ChannelActivation(model.mixed4a, 465)
    score = lambda img: channel.per_image(ns["opt"].collect_activations(model, channel.targets, img()))  # noqa: E731
    assert score(image) > 10 * score(fresh)  # the channel is far more active after 512 steps


@pytest.mark.slow
def test_circuits_example(seeded_torch):
    ns = _run(CIRCUITS_EXAMPLE)
    assert ns["W_4a_4b"].shape == (512, 508, 5, 5)
    assert ns["hm_img"].shape == (1, 3, 224, 224)
    img, img_set = ns["img"], ns["img_set"]
    assert img.shape == (2, 3, 224, 224) and img_set.shape == (3, 3, 224, 224)
    opt, model = ns["opt"], ns["model"]
    first = opt.loss.NeuronActivation(model.mixed4a, 308)
    second = opt.loss.NeuronActivation(model.mixed4b_relu, 443)
    acts = opt.collect_activations(model, first.targets + second.targets, img)
    # each image excites its own neuron: image 0 the mixed4a unit, image 1 the mixed4b unit
    assert first(acts)[0] > 0.5 and second(acts)[1] > 0.5
    assert first(acts)[0] > first(acts)[1] and second(acts)[1] > second(acts)[0]
