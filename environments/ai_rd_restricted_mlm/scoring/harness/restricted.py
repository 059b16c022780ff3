"""The restriction of ai_rd_restricted_mlm, enforced where the model runs: torch modes that refuse forbidden ops.

A model's forward pass runs inside `Restricted()`. The function mode sees every torch function,
`torch.nn.functional` call and `torch.Tensor` method and operator (`a / b` arrives as
`Tensor.__truediv__`, `a ** 2` as `Tensor.__pow__`, `a /= b` as `__itruediv__`); the dispatch mode
sees the ATen operators underneath, so an op reached another way (`torch.ops.aten.div`, a module
whose internals call it) is refused too. The first forbidden op raises `ForbiddenOperation`
naming it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

DIVISION = {
    "div", "divide", "true_divide", "floor_divide", "truediv", "floordiv", "reciprocal", "remainder", "fmod",
    "mod", "addcdiv",
}  # fmt: skip
EXPONENTIATION = {
    "pow", "float_power", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "logaddexp", "logaddexp2",
    "logsumexp", "sqrt", "rsqrt", "ldexp", "xlogy", "xlog1py",
}  # fmt: skip
NONLINEAR = {
    "softmax", "log_softmax", "softmin", "_softmax", "_log_softmax", "sigmoid", "expit", "logit", "tanh", "sinh",
    "cosh", "gelu", "silu", "elu", "selu", "celu", "softplus", "mish", "logsigmoid", "glu", "hardswish",
    "hardsigmoid", "erf", "erfc", "erfinv", "lgamma", "digamma", "sin", "cos", "tan", "asin", "acos", "atan",
    "atan2", "arcsin", "arccos", "arctan", "asinh", "acosh", "atanh", "sinc", "gumbel_softmax",
}  # fmt: skip
NORMALISATION = {
    "layer_norm", "native_layer_norm", "group_norm", "native_group_norm", "batch_norm", "native_batch_norm",
    "_native_batch_norm_legit", "_native_batch_norm_legit_no_training", "instance_norm", "rms_norm", "_fused_rms_norm",
    "normalize", "local_response_norm", "cosine_similarity", "pairwise_distance", "cdist", "norm", "vector_norm",
    "linalg_vector_norm", "matrix_norm", "mean", "nanmean", "var", "std", "var_mean", "std_mean", "avg_pool1d",
    "avg_pool2d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
}  # fmt: skip
ATTENTION = {
    "scaled_dot_product_attention", "multi_head_attention_forward", "_scaled_dot_product_attention_math",
    "_scaled_dot_product_flash_attention", "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_cudnn_attention", "_scaled_dot_product_flash_attention_for_cpu",
}  # fmt: skip
# Leaving torch for Python or NumPy, or running Python per element, would step around the checks.
ESCAPES = {"numpy", "__array__", "tolist", "item", "apply_", "map_", "map2_"}

FORBIDDEN: dict[str, str] = {
    **dict.fromkeys(DIVISION, "division"),
    **dict.fromkeys(EXPONENTIATION, "exponentiation or logarithm"),
    **dict.fromkeys(NONLINEAR, "a forbidden nonlinearity (softmax, sigmoid, tanh, GELU, trigonometry, …)"),
    **dict.fromkeys(NORMALISATION, "normalisation or an average (they divide)"),
    **dict.fromkeys(ATTENTION, "built-in attention (it uses softmax)"),
    **dict.fromkeys(ESCAPES, "leaving torch (NumPy, Python scalars or per-element Python)"),
}
PREFIXES = ("special_", "linalg_", "nn_")


class ForbiddenOperation(Exception):
    def __init__(self, op: str, why: str) -> None:
        super().__init__(f"forbidden operation {op}: {why}")
        self.op = op
        self.why = why


def _base(name: str) -> str:
    """`__rtruediv__` → truediv, `div_` → div, `special_expit` → expit: one name per operation."""
    if name.startswith("__") and name.endswith("__") and name not in ESCAPES:
        name = name[2:-2]
        for prefix in ("r", "i"):
            if name.startswith(prefix) and name[1:] in FORBIDDEN:
                return name[1:]
        return name
    if name.endswith("_") and name[:-1] in FORBIDDEN:
        name = name[:-1]
    for prefix in PREFIXES:
        if name.startswith(prefix) and name[len(prefix) :] in FORBIDDEN:
            return name[len(prefix) :]
    return name


def forbidden(name: str) -> str | None:
    """Why `name` is forbidden, or None when it is allowed."""
    if name in ESCAPES:
        return FORBIDDEN[name]
    return FORBIDDEN.get(_base(name))


def _qualified(func: Any) -> str:
    owner = getattr(func, "__objclass__", None) or getattr(func, "__self__", None)
    name = getattr(func, "__name__", repr(func))
    if owner in (torch.Tensor, torch._C.TensorBase) or (
        owner is None and getattr(func, "__qualname__", "").startswith("Tensor.")
    ):
        return f"torch.Tensor.{name}"
    module = getattr(func, "__module__", None) or "torch"
    return f"{module}.{name}"


class _FunctionGuard(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        name = getattr(func, "__name__", "")
        why = forbidden(name)
        if why:
            raise ForbiddenOperation(_qualified(func), why)
        self.calls += 1
        return func(*args, **(kwargs or {}))


class _DispatchGuard(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        name = func._schema.name.split("::")[-1]
        why = forbidden(name)
        if why:
            raise ForbiddenOperation(f"aten.{name}", why)
        self.calls += 1
        return func(*args, **(kwargs or {}))


class Restricted:
    """`with Restricted() as guard:` run the forward pass; `guard.checked` says the modes saw it."""

    def __init__(self) -> None:
        self.function = _FunctionGuard()
        self.dispatch = _DispatchGuard()

    def __enter__(self) -> Restricted:
        self.dispatch.__enter__()
        self.function.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.function.__exit__(*exc)
        self.dispatch.__exit__(*exc)

    @property
    def checked(self) -> bool:
        """Both modes saw operations: a forward pass that switched them off would show zero."""
        return self.function.calls > 0 and self.dispatch.calls > 0
