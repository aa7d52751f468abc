"""The VAE-CNN family: sizes, shapes, and export parity through the app's engine."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import onnxruntime as ort  # noqa: E402

from mammodesk.inference import ModelRunner  # noqa: E402
from mammodesk.io import Image, ImageMeta  # noqa: E402
from mammodesk_train.data.tasks import get_task  # noqa: E402
from mammodesk_train.engine import FitConfig  # noqa: E402
from mammodesk_train.families.vae_cnn import PRESETS, TrainedVaeCnn, VaeCnnFamily, VaeCnnPreset  # noqa: E402
from mammodesk_train.models.vae_cnn import VAE, LatentClassifier, vae_loss  # noqa: E402

TINY = VaeCnnPreset("tiny", "test", 16, 24, (4, 4, 4), 8, FitConfig(epochs=1), FitConfig(epochs=1))


def test_classifier_has_the_papers_228_parameters():
    assert sum(p.numel() for p in LatentClassifier(4).parameters()) == 228


def test_paper_encoder_size():
    preset = PRESETS["vae-cnn-paper"]
    vae = VAE(preset.height, preset.width, preset.channels, preset.latent)
    encoder = sum(p.numel() for m in (vae.convs, vae.fc_mu, vae.fc_logvar) for p in m.parameters())
    assert 51.0e6 < encoder < 52.5e6  # MODELS.md: 52.2M, dominated by the dense layers


def test_vae_shapes_and_loss():
    vae = VAE(24, 16, (4, 4, 4), 8)
    x = torch.rand(3, 1, 24, 16)
    recon, mu, logvar = vae(x)
    assert recon.shape == x.shape and mu.shape == (3, 8) and logvar.shape == (3, 8)
    assert torch.isfinite(vae_loss(vae, (x,)))
    with pytest.raises(ValueError, match="divisible by 8"):
        VAE(20, 16, (4, 4, 4), 8)


def test_export_parity_and_engine(tmp_path):
    torch.manual_seed(0)
    task = get_task("density")
    model = TrainedVaeCnn(VAE(24, 16, (4, 4, 4), 8).eval(), LatentClassifier(3).eval())
    family = VaeCnnFamily(TINY, device="cpu", progress=False)
    path = family.export(model, task, tmp_path / "tiny.onnx", {"dataset": "synthetic"}, {"how": "untrained"},
                         "tiny-density").path  # export() verifies: logits 1e-4, CAM correlation 0.99
    runner = ModelRunner(path, prefer_gpu=False)
    assert runner.card.labels == ("F", "G", "D") and runner.card.has_cams
    image = Image((np.random.default_rng(1).random((64, 48)) * 255).astype(np.uint8), ImageMeta())
    prediction = runner.predict(image)
    x = torch.from_numpy(runner.card.spec.apply(image).array[None, None].copy())
    with torch.no_grad():
        mu, logvar = model.vae.encode(x)
        features = torch.stack([mu, torch.exp(0.5 * logvar), mu], dim=1)  # [mu, sigma, z = mu]
        expected = torch.softmax(model.classifier(features), dim=1)[0].numpy()
    np.testing.assert_allclose(prediction.probabilities, expected, atol=1e-5)
    from mammodesk.inference import ModelLibrary

    (entry,) = ModelLibrary([tmp_path], include_bundled=False).entries  # the decoder is a companion, not a model
    assert entry.companions == {"vae-reconstruction": tmp_path / "tiny.decoder.onnx"}
    decoder = ort.InferenceSession(str(tmp_path / "tiny.decoder.onnx"), providers=["CPUExecutionProvider"])
    (reconstruction,) = decoder.run(None, {"image": x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(reconstruction, model.vae.decode(model.vae.encode(x)[0]).numpy(), atol=1e-5)
    library = ModelLibrary([tmp_path], include_bundled=False)
    session = library.companion_session(entry.companions["vae-reconstruction"])
    np.testing.assert_allclose(session.run(None, {"image": x.numpy()})[0], reconstruction, atol=1e-6)


def test_a_companion_is_verified_like_a_model(tmp_path):
    from mammodesk.inference import ModelContractError, ModelLibrary

    torch.manual_seed(0)
    model = TrainedVaeCnn(VAE(24, 16, (4, 4, 4), 8).eval(), LatentClassifier(3).eval())
    family = VaeCnnFamily(TINY, device="cpu", progress=False)
    family.export(model, get_task("density"), tmp_path / "tiny.onnx", {"dataset": "synthetic"}, {"how": "untrained"},
                  "tiny-density")
    decoder = tmp_path / "tiny.decoder.onnx"
    data = bytearray(decoder.read_bytes())
    data[len(data) // 2] ^= 0x01  # the middle of the file is weights
    decoder.write_bytes(bytes(data))
    (entry,) = ModelLibrary([tmp_path], include_bundled=False).entries
    with pytest.raises(ModelContractError, match="damaged"):
        ModelLibrary([tmp_path], include_bundled=False).companion_session(entry.companions["vae-reconstruction"])
