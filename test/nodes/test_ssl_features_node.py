"""The ssl_features node as a real process, fed real images over DDS.

A tiny, seeded, randomly initialized ViT (patch 8) is saved with ``save_checkpoint`` and
passed as ``model_path``. What the node publishes must equal that model run offline in this
process on the same pixels: features (values, shape, stride), embedding and the PCA colours of
a basis fitted on the first frame. Bad input must be reported on /diagnostics, frames arriving
during processing dropped and counted, and good frames answered afterwards.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from builtin_interfaces.msg import Time
from kestrel_interfaces.msg import Embedding, FeatureMap
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from kestrel_core.features.backbones import build_backbone
from kestrel_core.features.checkpoint import load_feature_model, save_checkpoint
from kestrel_core.features.model import FeatureModel
from kestrel_core.features.pca import PCAProjector
from kestrel_ros.compat.approximate_time import stamp_ns, time_ns
from kestrel_ros.conversions.feature_map import embedding_to_numpy, feature_map_to_numpy
from kestrel_ros.conversions.image import image_to_numpy, numpy_to_image
from kestrel_ros.nodes.ssl_features import PcaColouring, cell_factor, downscale_factor, model_input
from kestrel_tools.datasets import load_middlebury_motorcycle
from kestrel_tools.graph import DiagnosticsProbe, GraphProbe, NodeProcess

DOMAIN = int(os.environ["ROS_DOMAIN_ID"])
FRAME_ID = "camera_optical_frame"
MODEL_ID = "tiny_vit_test"
PATCH = 8
CHANNELS = 48
OUTPUTS = ("features", "features/embedding", "features/pca")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(5)
    backbone = build_backbone("vit_tiny", patch_size=PATCH, depth=2, embed_dim=CHANNELS,
                              num_heads=3)
    return save_checkpoint(tmp_path_factory.mktemp("ssl") / "tiny.pt", backbone,
                           {"model_id": MODEL_ID})


@pytest.fixture(scope="module")
def model(checkpoint) -> FeatureModel:
    return load_feature_model(checkpoint, "cpu")


@pytest.fixture(scope="module")
def motorcycle_left() -> np.ndarray:
    return load_middlebury_motorcycle().left


# ----------------------------------------------------------------- the node's helpers, no DDS
@pytest.mark.parametrize(("height", "width", "input_size", "factor"), [
    (480, 640, 0, 1), (480, 640, 640, 1), (480, 640, 639, 2), (480, 640, 320, 2),
    (480, 640, 319, 3), (720, 1280, 512, 3), (10, 4000, 512, 8)])
def test_downscale_factor_is_the_smallest_integer_that_fits(height, width, input_size, factor):
    assert downscale_factor(height, width, input_size) == factor


@pytest.mark.parametrize(("stride", "model_stride", "factor"), [
    (0, 14, 3),    # unset: input_size decides (600 px into 256 -> k = 3)
    (28, 14, 2), (30, 14, 2), (8, 14, 1), (64, 8, 8),
])
def test_stride_parameter_sets_the_cell_size_in_whole_model_strides(stride, model_stride, factor):
    assert cell_factor(600, 400, 256, stride, model_stride) == factor


def test_model_input_crops_to_whole_cells_and_shrinks_by_exact_block_means():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(50, 70, 3), dtype=np.uint8)
    images = model_input(rgb, cell=8, factor=2)  # blocks of 16: 48 x 64 kept, shrunk to 24 x 32
    assert images.shape == (1, 3, 24, 32) and images.dtype == torch.float32
    means = rgb[:48, :64].reshape(24, 2, 32, 2, 3).mean(axis=(1, 3)) / 255.0
    np.testing.assert_allclose(images[0].permute(1, 2, 0).numpy(), means, atol=1e-5)

    gray16 = rng.integers(0, 65536, size=(17, 9), dtype=np.uint16)
    grey_images = model_input(gray16, cell=8, factor=1)
    assert grey_images.shape == (1, 3, 16, 8)
    np.testing.assert_allclose(grey_images[0, 1].numpy(), gray16[:16, :8] / 65535.0, atol=1e-6)
    assert torch.equal(grey_images[0, 0], grey_images[0, 2])

    floats = np.float32([[-0.5, 0.25], [1.5, 1.0]]).repeat(4, 0).repeat(4, 1)  # 8 x 8
    assert model_input(floats, cell=8, factor=1)[0, 0].unique().tolist() == [0.0, 0.25, 1.0]

    with pytest.raises(ValueError, match="smaller than one 16x16 feature cell"):
        model_input(rgb[:15], cell=8, factor=2)


def test_pca_colouring_is_fitted_once_on_the_first_frames_then_fixed():
    rng = np.random.default_rng(1)
    first, second, third = (rng.normal(size=(6, 3, 4)).astype(np.float32) for _ in range(3))
    colouring = PcaColouring(fit_cells=20)
    assert colouring.colour(first) is None  # 12 cells gathered, 20 needed
    colours = colouring.colour(second)  # 8 more cells complete the fit
    fitted = PCAProjector().fit(np.concatenate([first.reshape(6, -1).T, second.reshape(6, -1).T[:8]]))
    np.testing.assert_array_equal(colours, fitted.to_rgb(second))
    np.testing.assert_array_equal(colouring.colour(third), fitted.to_rgb(third))
    np.testing.assert_array_equal(colouring.colour(second), colours)


# ----------------------------------------------------------------- the node over DDS
def start_node(checkpoint: Path, *params: str) -> NodeProcess:
    ros_args = ["-p", f"model_path:={checkpoint}", "-p", "qos_reliability:=reliable",
                "-p", "diagnostics_period:=0.2", "-p", "device:=cpu"]
    for param in params:
        ros_args += ["-p", param]
    return NodeProcess("ssl_features", ros_args, domain_id=DOMAIN)


def offline(model: FeatureModel, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The model's own dense features (C, h, w) and embedding (D,) of an (H, W, 3) RGB image
    on the 0-255 scale."""
    images = torch.from_numpy(np.float32(rgb)).permute(2, 0, 1).unsqueeze(0) / 255.0
    return model.dense(images)[0].numpy(), model.embedding(images)[0].numpy()


class FeatureClient:
    """Publishes images on ``image`` and collects the node's outputs by stamp."""

    def __init__(self, probe: GraphProbe) -> None:
        self.probe = probe
        probe.publisher(Image, "image")
        probe.subscribe(FeatureMap, "features")
        probe.subscribe(Embedding, "features/embedding")
        probe.subscribe(Image, "features/pca")
        self._stamps = itertools.count(1)

    def send(self, pixels: np.ndarray, encoding: str = "rgb8") -> Time:
        stamp = Time(sec=1_000 + next(self._stamps), nanosec=0)
        msg = numpy_to_image(pixels, encoding, header=Header(stamp=stamp, frame_id=FRAME_ID))
        self.probe.publisher(Image, "image").publish(msg)
        return stamp

    def outputs_for(self, stamp: Time) -> dict | None:
        """The node's three outputs stamped ``stamp``, once all have arrived."""
        key = time_ns(stamp)
        found = {topic: msg for topic in OUTPUTS
                 for msg in self.probe.received.get(topic, []) if stamp_ns(msg) == key}
        return found if len(found) == len(OUTPUTS) else None

    def request(self, pixels: np.ndarray, encoding: str = "rgb8", timeout: float = 60.0) -> dict:
        """Send ``pixels`` (fresh stamps, again every 10 s in case the node was busy) until
        its outputs arrive; return them."""
        sent: list[Time] = []

        def answered() -> dict | None:
            return next((r for s in sent if (r := self.outputs_for(s)) is not None), None)

        assert self.probe.wait_for(lambda: answered() is not None, timeout,
                                   while_waiting=lambda: sent.append(self.send(pixels, encoding)),
                                   period=10.0), f"no features within {timeout} s"
        return answered()


def connected_client(probe: GraphProbe, node: NodeProcess) -> FeatureClient:
    client = FeatureClient(probe)
    assert probe.wait_for_subscribers(["image"], timeout=60.0), node.log()
    return client


def check_features(reply: dict, model: FeatureModel, rgb_seen: np.ndarray, stride: int,
                   grid: tuple[int, int]) -> np.ndarray:
    """The reply's features and embedding equal the model's on ``rgb_seen`` (the pixels the
    model sees); returns the features."""
    msg = reply["features"]
    assert msg.model_id == MODEL_ID and msg.header.frame_id == FRAME_ID
    assert (msg.stride, msg.resolution) == (stride, 0.0)
    features = feature_map_to_numpy(msg)
    assert features.shape == (CHANNELS, *grid)
    expected_dense, expected_embedding = offline(model, rgb_seen)
    np.testing.assert_allclose(features, expected_dense, atol=1e-4, rtol=1e-4)
    embedding = embedding_to_numpy(reply["features/embedding"])
    assert embedding.shape == (CHANNELS,) and reply["features/embedding"].model_id == MODEL_ID
    np.testing.assert_allclose(embedding, expected_embedding, atol=1e-4, rtol=1e-4)
    return features


def test_features_embedding_and_pca_equal_the_model_run_offline(checkpoint, model, motorcycle_left):
    # 125 x 100: not a multiple of the patch, so the node crops to 120 x 96 -> 15 x 12 cells.
    small = np.ascontiguousarray(motorcycle_left[200:300, 300:425])
    # 262 x 200 with input_size 128: shrunk by k = 3 after cropping to 240 x 192 -> 10 x 8 cells
    # of 24 pixels.
    large = np.ascontiguousarray(motorcycle_left[150:350, 250:512])
    large_seen = large[:192, :240].reshape(64, 3, 80, 3, 3).mean(axis=(1, 3))  # 3 x 3 block means

    with start_node(checkpoint, "input_size:=128", "pca_fit_cells:=180") as node, \
            GraphProbe("ssl_features_test_probe", domain_id=DOMAIN) as probe:
        client = connected_client(probe, node)
        first = client.request(small)
        again = client.request(small)
        shrunk = client.request(large)
        assert node.alive(), node.log()

    features = check_features(first, model, small, PATCH, (12, 15))
    # Identical images give identical features, embeddings and colours.
    np.testing.assert_array_equal(feature_map_to_numpy(again["features"]), features)
    np.testing.assert_array_equal(embedding_to_numpy(again["features/embedding"]),
                                  embedding_to_numpy(first["features/embedding"]))
    assert again["features"].header.stamp != first["features"].header.stamp

    # The PCA basis was fitted on the first frame's 180 cells and then kept.
    pca = first["features/pca"]
    assert pca.encoding == "rgb8" and (pca.height, pca.width) == (12, 15)
    assert pca.header == first["features"].header
    projector = PCAProjector().fit(features.reshape(CHANNELS, -1).T)
    colours = image_to_numpy(pca).astype(int)
    assert np.abs(colours - projector.to_rgb(features)).max() <= 1
    np.testing.assert_array_equal(image_to_numpy(again["features/pca"]), image_to_numpy(pca))

    # The downscaled frame: stride k * patch in input pixels, features of the shrunk image.
    shrunk_features = check_features(shrunk, model, large_seen, 3 * PATCH, (8, 10))
    shrunk_pca = shrunk["features/pca"]
    assert (shrunk_pca.height, shrunk_pca.width) == (8, 10)
    assert np.abs(image_to_numpy(shrunk_pca).astype(int)
                  - projector.to_rgb(shrunk_features)).max() <= 1


def test_bad_input_and_busy_frames_are_counted_while_good_frames_are_answered(
        checkpoint, model, motorcycle_left):
    good = np.ascontiguousarray(motorcycle_left[100:196, 100:228])  # 128 x 96
    burst_frame = np.ascontiguousarray(motorcycle_left[100:340, 200:520])  # 320 x 240
    burst_size = 6

    with start_node(checkpoint, "input_size:=0", "pca_fit_cells:=3", "qos_depth:=10") as node, \
            GraphProbe("ssl_features_bad_input_probe", domain_id=DOMAIN) as probe:
        client = connected_client(probe, node)
        diagnostics = DiagnosticsProbe(probe, "ssl features")
        check_features(client.request(good), model, good, PATCH, (12, 16))

        def expect_drop(cause: str, send) -> None:
            before = diagnostics.dropped(cause)
            assert probe.wait_for(lambda: diagnostics.dropped(cause) > before, timeout=30.0,
                                  while_waiting=send, period=3.0), (cause, node.log())
            assert node.alive(), node.log()

        yuv = np.ascontiguousarray(good[:, :, :2])
        expect_drop("unsupported_encoding", lambda: client.send(yuv, "yuv422"))
        tiny = np.ascontiguousarray(good[:6, :6, 0])  # smaller than one 8 x 8 patch
        expect_drop("image_too_small", lambda: client.send(tiny, "mono8"))
        gray = good.mean(axis=2).astype(np.float32) / 255.0
        gray[5:9, 5:9] = np.nan
        expect_drop("non_finite_pixels", lambda: client.send(gray, "32FC1"))

        # A burst: frames arriving while one is processed are dropped and counted, not queued.
        # The burst is published within milliseconds, far less than one frame's processing, so
        # at least one frame is dropped as busy; every frame is either processed or dropped.
        def counts() -> tuple[int, int, int]:
            return tuple(int(diagnostics.value(key, "0")) for key in
                         ("frames_received", "frames_processed", "frames_dropped"))

        def settled(at_least: int) -> bool:
            """At least ``at_least`` frames received, each either processed or dropped."""
            received, processed, dropped = counts()
            return received >= at_least and received == processed + dropped

        assert probe.wait_for(lambda: settled(0), timeout=30.0), (counts(), node.log())
        received0, processed0, _ = counts()
        busy0 = diagnostics.dropped("busy")
        stamps = [client.send(burst_frame) for _ in range(burst_size)]

        assert probe.wait_for(lambda: settled(received0 + burst_size), timeout=60.0), (
            counts(), node.log())
        processed = counts()[1] - processed0
        busy = diagnostics.dropped("busy") - busy0
        assert processed + busy == burst_size and processed >= 1 and busy >= 1
        assert probe.wait_for(
            lambda: sum(client.outputs_for(s) is not None for s in stamps) == processed, 30.0)
        answered = next(r for s in stamps if (r := client.outputs_for(s)) is not None)
        check_features(answered, model, burst_frame, PATCH, (30, 40))

        # Still answering good frames, correctly; bgr8 is reordered to the RGB the model takes.
        check_features(client.request(np.ascontiguousarray(good[:, :, ::-1]), encoding="bgr8"),
                       model, good, PATCH, (12, 16))
        assert node.alive(), node.log()
