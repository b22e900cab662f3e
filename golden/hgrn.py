"""Pure-PyTorch reference of HGRNBitForCausalLM (the MatMul-free LM), float and integer paths.

No Triton and no transformers: the model runs token by token on the CPU from a
:class:`~tritium.golden.checkpoint.ModelDescription`, carrying the MLGRU hidden state from
one token to the next exactly as generation does.  It computes what the released model's
code computes (its fused kernels included), in float32 by default or in float16.

Forward pass::

    x = embeddings[token]
    for each layer l:
        r = x + attn(RMSNorm(x))                     # MLGRU
        x = r + mlp(RMSNorm(r))                      # GLU MLP
    logits = lm_head(RMSNorm(x))                     # lm_head is a BitLinear too

    attn:  f = sigmoid(f_proj(x));  f = lb_l + (1 - lb_l) * f   (l > 0)
           i = SiLU(i_proj(x)) * (1 - f);  h = f * h + i
           o_proj(RMSNorm(g_proj(x)) * w_g * SiLU(h))
    mlp:   gate, y = split(gate_proj(x));  down_proj(SiLU(gate) * y)

    lb = cumsum(softmax(lower_bounds, dim 0)) - softmax(lower_bounds, dim 0)[0]; lb_0 = 0

Every RMSNorm outside the BitLinears (block norms, final norm and ``g_norm``) uses
config.json's ``rms_norm_eps``.  ``g_norm`` normalises the whole width with one weight of
shape [hidden_size]: ``num_heads`` has no numerical effect.  Every BitLinear is
``RMSNorm(x)*g`` with eps ``BITLINEAR_NORM_EPS`` (1e-6, the fused kernel's default) ->
per-token int8 absmax, halves rounded away from zero (the kernel's round) -> ternary
weights (round half to even, torch's round).  The float path multiplies the dequantised
activations by the dequantised weights, as the reference does; the integer ("hardware")
path computes the exact integer product of the int8 activations and the ternary weights
(what the TMV engine computes) and rescales it once by ``1 / (s_x * s_w)``.  The two
differ only by float rounding; :meth:`compare` reports by how much.
"""

from __future__ import annotations

import os

import torch

from tritium.errors import ConfigError
from tritium.golden.lm import CausalLM, IntegerPathReport, TernaryProjection
from tritium.golden.checkpoint import (ARCH_HGRN, BitLinear, ModelDescription,
                                     UnknownArchitectureError, check_device_memory, describe,
                                     load_checkpoint, scan_checkpoint)
from tritium.golden.quantize import (BITLINEAR_NORM_EPS, HGRN_ACT_ROUNDING, dequantize_weights_as,
                                   rms_norm)

__all__ = ["DTYPES", "HGRNBitForCausalLM", "IntegerPathReport"]

#: precisions the float path runs in; float32 is the default (and the only one the integer
#: path takes), float16 reproduces the released model run in half precision
DTYPES = (torch.float32, torch.float16)


def _swiglu(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a * b / (1 + exp(-a))`` in float32: SiLU(a) * b as the released activation kernel
    writes it (the association matters at the last ulp, see rms_norm)."""
    a = a.float()
    return a * b.float() / (1 + torch.exp(-a))


class _Projection(TernaryProjection):
    """An HGRN-bit BitLinear: its own RMSNorm (eps ``BITLINEAR_NORM_EPS``) then the
    ternary projection, activations rounded as the released kernel rounds.

    In float16 (``latent`` given) it computes as the released kernel does on half inputs:
    norm and activation quantisation in float32 on the half input and gain, the dequantised
    activations stored as half, the weights quantised in half from the latent weights, and
    a half matmul.
    """

    def __init__(self, lin: BitLinear, dtype: torch.dtype = torch.float32,
                 latent: torch.Tensor | None = None):
        super().__init__(lin, HGRN_ACT_ROUNDING)
        self.dtype = dtype
        if latent is not None:
            self.w_float = dequantize_weights_as(latent, dtype)
        self.norm = None if lin.norm_weight is None else \
            torch.from_numpy(lin.norm_weight).to(dtype)

    def quantise(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return super().quantise(rms_norm(x, self.norm, BITLINEAR_NORM_EPS, kernel=True))

    def __call__(self, x: torch.Tensor, integer: bool) -> torch.Tensor:
        if self.dtype != torch.float32:
            x_q, s_x = self.quantise(x)
            return (x_q.float() / s_x).to(self.dtype) @ self.w_float.t()
        return super().__call__(x, integer)


class HGRNBitForCausalLM(CausalLM):
    """HGRN-bit causal LM from a model description (see the module docstring)."""

    def __init__(self, desc: ModelDescription, dtype: torch.dtype = torch.float32,
                 latent: dict[str, torch.Tensor] | None = None):
        """``dtype``: float32 (default) or float16, the precision of every float tensor and
        operation as in the released model run at that precision; float16 needs ``latent``,
        the latent weight of every BitLinear by module name (:meth:`from_pretrained` reads
        them), because the weights are then quantised in half precision."""
        if desc.arch != ARCH_HGRN:
            raise UnknownArchitectureError(
                f"{desc.source} is a {desc.arch} checkpoint; HGRNBitForCausalLM needs an "
                "HGRN-bit (MatMul-free LM) checkpoint")
        if dtype not in DTYPES:
            raise ConfigError(f"dtype {dtype} is not supported; use one of "
                              f"{', '.join(map(str, DTYPES))}")
        if dtype != torch.float32 and latent is None:
            raise ConfigError(f"dtype {dtype} needs the latent weights; load the model with "
                              "HGRNBitForCausalLM.from_pretrained(path, dtype=...)")
        self.dtype = dtype
        self.desc = desc
        self.eps = desc.rms_norm_eps
        self.vocab_size = desc.vocab_size
        t = {k: torch.from_numpy(v).to(dtype) for k, v in desc.tensors.items()}
        self.embeddings = t["model.embeddings.weight"]
        self.final_norm = t["model.norm.weight"]
        lower = t.get("model.lower_bounds")
        if lower is not None:
            p = lower.softmax(0)
            lower = p.cumsum(0) - p[0]
        self.lower_bounds = lower
        self.layers = []
        for layer in desc.layers:
            proj = {name: self._projection(lin, latent) for name, lin in layer.linears.items()}
            norms = {k: torch.from_numpy(v).to(dtype) for k, v in layer.tensors.items()}
            self.layers.append((layer.index, proj, norms))
        self.lm_head = self._projection(desc.lm_head, latent)
        self.state_size = self.layers[0][1]["attn.i_proj"].w_float.shape[0] if self.layers else 0

    def _projection(self, lin: BitLinear, latent) -> _Projection:
        return _Projection(lin, self.dtype, None if latent is None else latent[lin.name])

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, dtype: torch.dtype = torch.float32,
                        *, device_mem: int | None = None, fmt: str = "t2",
                        progress=None) -> "HGRNBitForCausalLM":
        """Load an HGRN-bit checkpoint (directory or weight file) with :func:`load_checkpoint`
        (same keyword arguments); ``dtype`` as in the constructor."""
        if dtype == torch.float32:
            return cls(load_checkpoint(path, device_mem=device_mem, fmt=fmt, progress=progress))
        spec, source = scan_checkpoint(path)
        check_device_memory(spec, device_mem, fmt)
        desc = describe(spec, source, progress)
        latent = {ls.module: source.get(f"{ls.module}.weight") for ls in spec.linears}
        return cls(desc, dtype, latent)

    # --- one token -----------------------------------------------------------------------

    def init_state(self, batch: int = 1) -> list[torch.Tensor]:
        """Zero MLGRU hidden state: one [batch, channels] tensor per layer."""
        return [torch.zeros(batch, self.state_size) for _ in self.layers]

    def step(self, tokens: torch.Tensor, state: list[torch.Tensor],
             integer: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Advance by one token per sequence: tokens [B] -> (logits [B, V] float32, new state).

        The state stays float32 in either dtype: the released recurrence kernel keeps it in
        float32 registers across a sequence.  In float16 every norm and gate computes in
        float32 on half operands and rounds its result to half, as the fused kernels do;
        element-wise torch ops (sigmoid, lower bound, residual add) run in half.
        """
        if integer and self.dtype != torch.float32:
            raise ConfigError("the integer path runs in float32 only; load the model with "
                              "dtype=torch.float32 to use it")
        x = self.embeddings[tokens]
        new_state = []
        for (l, proj, norms), h in zip(self.layers, state):
            a, h = self._mlgru(l, proj, norms, self._norm(x, norms["attn_norm.weight"]),
                               h, integer)
            new_state.append(h)
            # the fused pre-norm adds the residual in float32 and normalises that sum
            r = x.float() + a.float()
            m = self._norm(r, norms["mlp_norm.weight"])
            r = r.to(self.dtype)
            gate, y = proj["mlp.gate_proj"](m, integer).chunk(2, dim=-1)
            x = r + proj["mlp.down_proj"](self._cast(_swiglu(gate, y)), integer)
        return self.lm_head(self._norm(x, self.final_norm), integer).float(), new_state

    def _cast(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.dtype)

    def _norm(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return self._cast(rms_norm(x, weight, self.eps, kernel=True))

    def _mlgru(self, l, proj, norms, x, h, integer):
        f = torch.sigmoid(proj["attn.f_proj"](x, integer))
        if self.lower_bounds is not None and l > 0:
            lb = self.lower_bounds[l]
            f = lb + (1 - lb) * f
        # the activation kernel stores its result in the model dtype
        i = self._cast(_swiglu(proj["attn.i_proj"](x, integer), 1 - f))
        h = f.float() * h + i.float()
        # g_norm normalises the whole width whatever num_heads is, then gates by swish(h)
        gated = rms_norm(proj["attn.g_proj"](x, integer), norms["attn.g_norm.weight"], self.eps,
                         kernel=True)
        o = self._cast(h).float()  # the recurrence kernel stores its output in the model dtype
        return proj["attn.o_proj"](self._cast(gated * o * torch.sigmoid(o)), integer), h

    def projections(self) -> list[TernaryProjection]:
        return [p for _, proj, _ in self.layers for p in proj.values()] + [self.lm_head]
