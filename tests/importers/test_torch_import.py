"""PyTorch import: the IR computes what the module computes (in eval mode), and the ONNX
export kept in the origin computes the same on ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from torch import nn

from importers import load_model
from importers.torch import import_torch
from prover.errors import ModelError, ShapeError, UnsupportedOperation
from prover.ir import ops
from prover.semantics import run


def _randomise_batchnorm(module: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(-1, 1)
            m.bias.data.uniform_(-1, 1)
    return module


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(6, 6)
        self.bn = nn.BatchNorm1d(6)
        self.fc2 = nn.Linear(12, 3)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        y = x.view(x.size(0), -1)
        h = y + F.relu(self.bn(self.fc1(y)))
        h = torch.cat([h, torch.tanh(self.drop(h)) * 2.0 - 1.0], dim=1)
        return torch.sigmoid(self.fc2(h)) / 3.0 + x.shape[1]


class SmallCnn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(2, 4, 3, stride=1, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
        self.c2 = nn.Conv2d(4, 4, 3, padding="same", groups=2, dilation=1)
        self.avg = nn.AvgPool2d(2, stride=2, ceil_mode=True, count_include_pad=False)
        self.c3 = nn.Conv2d(4, 6, 2, padding=1, dilation=2, bias=False)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        y = torch.relu(self.bn(self.c1(x)))
        y = self.pool(y)
        y = y + F.leaky_relu(self.c2(y), 0.1)
        y = self.avg(y)
        y = self.gap(torch.relu(self.c3(y)))
        return F.softmax(self.fc(torch.flatten(y, 1)), dim=1)


class Functional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(3, 2, 3, 3))
        self.bias = nn.Parameter(torch.randn(3))

    def forward(self, x):
        y = F.conv2d(x, self.weight, self.bias, stride=1, padding=1)
        y = F.max_pool2d(y, 2, ceil_mode=True)
        y = F.avg_pool2d(y, 2, stride=1, padding=1, count_include_pad=False)
        return y.permute(0, 2, 3, 1).reshape(x.shape[0], -1).clamp(min=-1.0, max=2.0)


def mlp() -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(8, 10),
        nn.ReLU(),
        nn.Linear(10, 10),
        nn.LeakyReLU(0.2),
        nn.Linear(10, 6),
        nn.Tanh(),
        nn.Linear(6, 4),
        nn.Softmax(dim=-1),
    )


MODULES = {
    "mlp": (mlp, (2, 4)),
    "residual": (Residual, (6,)),
    "cnn": (SmallCnn, (2, 9, 9)),
    "avgpool_include_pad": (lambda: nn.Sequential(nn.AvgPool2d(3, 2, 1), nn.Sigmoid()), (1, 6, 6)),
    "avgpool_ceil_include_pad": (
        lambda: nn.Sequential(nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=True)),
        (1, 6, 6),
    ),
    "bare_batchnorm": (lambda: nn.BatchNorm2d(2), (2, 3, 3)),
    "bare_conv": (lambda: nn.Conv2d(2, 3, 3, stride=2, padding="valid"), (2, 5, 5)),
    "functional": (lambda: Functional(), (2, 7, 7)),
}


def _check(module: nn.Module, shape: tuple[int, ...], xs: np.ndarray, kit) -> None:
    graph = import_torch(module, input_shape=shape)
    raw = import_torch(module, input_shape=shape, canonicalize=False)
    module.eval()
    with torch.no_grad():
        expected = module(torch.as_tensor(xs, dtype=torch.float32)).double().numpy()
    for g in (graph, raw):
        got = run(g, xs).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    origin = graph.origin
    assert origin.kind == "torch" and origin.onnx_input_shape == (1, *shape)
    for x, y in zip(xs, expected, strict=True):
        feed = x.reshape(origin.onnx_input_shape).astype(np.float32)
        replay = kit.ort_run(origin.onnx_bytes, origin.onnx_input_name, feed)
        np.testing.assert_allclose(replay.reshape(-1), y.reshape(-1), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_matches_torch_and_onnxruntime(name, kit):
    torch.manual_seed(1)
    factory, shape = MODULES[name]
    module = _randomise_batchnorm(factory())
    xs = np.random.default_rng(0).uniform(-2, 2, size=(4, *shape))
    _check(module, shape, xs, kit)


@settings(max_examples=20, deadline=None)
@given(arrays(np.float64, (2, 2, 9, 9), elements=st.floats(-4, 4, width=32)))
def test_cnn_agrees_on_sampled_inputs(xs):
    torch.manual_seed(1)
    module = _randomise_batchnorm(SmallCnn()).eval()
    graph = _cached_cnn_graph(module)
    with torch.no_grad():
        expected = module(torch.as_tensor(xs, dtype=torch.float32)).double().numpy()
    np.testing.assert_allclose(run(graph, xs).numpy(), expected, rtol=1e-4, atol=1e-5)


_CACHE: dict[str, object] = {}


def _cached_cnn_graph(module: nn.Module):
    if "cnn" not in _CACHE:
        _CACHE["cnn"] = import_torch(module, example_input=torch.zeros(1, 2, 9, 9))
    return _CACHE["cnn"]


def test_batchnorm_folds_and_eval_mode_is_used():
    module = _randomise_batchnorm(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)))
    module.train()
    graph = import_torch(module, input_shape=(3,))
    assert module.training  # the caller's mode is restored
    assert [type(node.op) for node in graph.nodes] == [ops.Gemm]
    xs = np.random.default_rng(2).normal(size=(5, 3))
    module.eval()
    with torch.no_grad():
        expected = module(torch.as_tensor(xs, dtype=torch.float32)).double().numpy()
    np.testing.assert_allclose(run(graph, xs).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_unsupported_module_and_function_are_named():
    with pytest.raises(UnsupportedOperation, match="GELU") as info:
        import_torch(nn.Sequential(nn.Linear(3, 3), nn.GELU()), input_shape=(3,))
    assert "Linear" in str(info.value)

    class Gelu(nn.Module):
        def forward(self, x):
            return F.gelu(x)

    with pytest.raises(UnsupportedOperation, match="gelu"):
        import_torch(Gelu(), input_shape=(3,))


def test_bad_torch_inputs():
    with pytest.raises(ModelError, match="input_shape"):
        import_torch(nn.Linear(3, 2))
    with pytest.raises(ModelError, match="batch axis"):
        import_torch(nn.Linear(3, 2), example_input=torch.zeros(2, 3))
    with pytest.raises(ShapeError, match="Linear"):
        import_torch(nn.Sequential(nn.Flatten(), nn.Linear(5, 2)), input_shape=(2, 3))

    class Branchy(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x

    with pytest.raises(ModelError, match="trace"):
        import_torch(Branchy(), input_shape=(3,))


def test_load_model_dispatches(tmp_path, kit):
    path = Path("/work/shared/benchmarks/vnncomp/test/test_small.onnx")
    if not path.exists():
        pytest.skip("benchmarks not present")
    by_path = load_model(path)
    for source in (str(path), path.read_bytes(), onnx.load(str(path))):
        assert [type(n.op) for n in load_model(source).nodes] == [type(n.op) for n in by_path.nodes]
    assert load_model(by_path) is by_path
    graph = load_model(nn.Linear(3, 2), input_shape=(3,))
    assert graph.input_shape == (3,) and graph.output_shape == (2,)
    with pytest.raises(ModelError, match="cannot load"):
        load_model(3.5)
