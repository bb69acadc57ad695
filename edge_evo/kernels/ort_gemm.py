"""Layer 1 of a whole population as ONE onnxruntime integer GEMM (engine ``ort``).

``X [B, I] (u8) x W1 [P*O, I]^T (s8)`` with the ``com.microsoft.QGemm`` contrib op (transB=1, so
the genome-major weights feed it without a transpose), zero points 0 and scales 1. Exactness:
x in [0, 127] and w in [-128, 127] keep every u8 x s8 pair sum below 2**15, so even the AVX2
``vpmaddubsw`` path (which saturates int16 pairs) is exact; the int32 sum (< 2**24) converts to
the float32 output exactly. Inputs with negative values cannot use u8 and go to the caller's
fallback. Weights change every generation, so they are graph INPUTS, never initializers.
"""
from __future__ import annotations

import numpy as np

_SESSIONS: dict = {}


class OrtUnavailable(RuntimeError):
    """onnxruntime is missing or lacks the integer GEMM."""


def _session(B: int, I: int, N: int, threads: int):
    key = (B, I, N, threads)
    sess = _SESSIONS.get(key)
    if sess is not None:
        return sess
    try:
        import onnxruntime as ort
        from onnx import TensorProto as TP, helper, numpy_helper
    except ImportError as e:
        raise OrtUnavailable(f"engine 'ort' needs onnx and onnxruntime ({e}); pip install 'edge-evo[onnx]'") from None
    one = numpy_helper.from_array(np.array(1.0, np.float32), "one")
    zu = numpy_helper.from_array(np.array(0, np.uint8), "zu")
    zs = numpy_helper.from_array(np.array(0, np.int8), "zs")
    node = helper.make_node("QGemm", ["X", "one", "zu", "W", "one", "zs"], ["Y"], domain="com.microsoft", transB=1)
    graph = helper.make_graph([node], "edge_evo_layer1",
                              [helper.make_tensor_value_info("X", TP.UINT8, [B, I]),
                               helper.make_tensor_value_info("W", TP.INT8, [N, I])],
                              [helper.make_tensor_value_info("Y", TP.FLOAT, [B, N])], initializer=[one, zu, zs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 8
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    _SESSIONS[key] = sess
    return sess


def available() -> bool:
    try:
        _session(1, 4, 4, 1)
        return True
    except Exception:  # noqa: BLE001 - any failure means "not usable here"
        return False


def layer1_products(W1: np.ndarray, X: np.ndarray, threads: int = 2) -> np.ndarray:
    """float32 [B, P*O] = X @ W1.reshape(P*O, I).T, exact integers. X int8 with all values >= 0."""
    P, O, I = W1.shape
    B = X.shape[0]
    sess = _session(B, I, P * O, threads)
    Xu = np.ascontiguousarray(X).view(np.uint8)
    Wf = np.ascontiguousarray(W1).reshape(P * O, I)
    return sess.run(None, {"X": Xu, "W": Wf})[0]
