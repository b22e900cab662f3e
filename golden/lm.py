"""What the float golden language models share: the ternary projection and the sequence API.

A model subclass of :class:`CausalLM` provides ``vocab_size``, ``init_state(batch)``,
``step(tokens [B], state, integer) -> (logits [B, V] float32, state)`` and
``projections()``; the base class turns these into teacher-forced :meth:`~CausalLM.logits`,
greedy :meth:`~CausalLM.generate`, :meth:`~CausalLM.trace_integer_matvecs` (the exact
operands a ternary engine must reproduce) and :meth:`~CausalLM.compare` (integer path
against float path).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from tritium.errors import ShapeError
from tritium.golden.checkpoint import BitLinear
from tritium.golden.quantize import quantize_activations


class TernaryProjection:
    """One BitLinear ``y = (x_q @ W_q.T) / (s_x * s_w)`` on both paths.

    ``quantise`` (overridable) turns the input into ``(x_q int8, s_x)``: per-token absmax
    with halves rounded as ``rounding`` says.  The integer path computes the exact int32
    product and rescales it once (what the TMV engine and its host compute).  The float
    path is ``float_form``:

    * ``"dequant"``: ``(x_q / s_x) @ (W_q / s_w).T``, the dequantised operands multiplied
      (HGRN-bit, and BitNet with latent weights quantised online);
    * ``"scale_after"``: ``((x_q / s_x) @ W_q.T) * (1 / s_w)``, the stored
      ``weight_scale`` applied after the product (BitNet "autobitlinear", offline);
    * ``"integer"``: ``(x_q @ W_q.T) / (s_w * s_x)`` in float (BitNet "bitlinear").
    """

    FLOAT_FORMS = ("dequant", "scale_after", "integer")

    def __init__(self, lin: BitLinear, rounding: str, float_form: str = "dequant"):
        if float_form not in self.FLOAT_FORMS:
            raise ValueError(f"float_form {float_form!r} is not one of {self.FLOAT_FORMS}")
        self.name = lin.name
        self.rounding = rounding
        self.float_form = float_form
        self.record = None  # callable(name, x_q, acc) while trace_integer_matvecs runs
        weights = torch.from_numpy(lin.weights)
        self.scale = torch.tensor(lin.scale, dtype=torch.float32)
        if float_form == "dequant":
            self.w_float = weights.float() / self.scale
        else:
            self.w_float = weights.float()
        # 1 / (1 / stored) recovers the stored float32 weight_scale exactly
        self.inv_scale = torch.tensor(1.0 / lin.scale, dtype=torch.float32)
        self.w_int_t = weights.to(torch.int32).t().contiguous()

    def quantise(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return quantize_activations(x, self.rounding)

    def __call__(self, x: torch.Tensor, integer: bool) -> torch.Tensor:
        x_q, s_x = self.quantise(x)
        if integer:
            # exact: |sum| <= 128 * in_features, far inside int32
            acc = x_q.to(torch.int32) @ self.w_int_t
            if self.record is not None:
                self.record(self.name, x_q, acc)
            return acc.float() / (s_x * self.scale)
        if self.float_form == "dequant":
            return (x_q.float() / s_x) @ self.w_float.t()
        if self.float_form == "scale_after":
            return ((x_q.float() / s_x) @ self.w_float.t()) * self.inv_scale
        return (x_q.float() @ self.w_float.t()) / (self.scale * s_x)


@dataclasses.dataclass(frozen=True)
class IntegerPathReport:
    """How far the integer path's logits are from the float path's."""

    tokens: int
    max_abs_dlogit: float
    top1_agreement: float   # fraction of positions whose argmax agrees

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


class CausalLM:
    """Sequence API over ``step`` (see the module docstring)."""

    vocab_size: int

    def init_state(self, batch: int = 1):
        raise NotImplementedError

    def step(self, tokens: torch.Tensor, state, integer: bool = False):
        raise NotImplementedError

    def projections(self) -> list[TernaryProjection]:
        """Every ternary projection the model owns."""
        raise NotImplementedError

    def _ids(self, input_ids) -> tuple[torch.Tensor, bool]:
        ids = torch.as_tensor(input_ids, dtype=torch.long)
        single = ids.dim() == 1
        if single:
            ids = ids.unsqueeze(0)
        if ids.dim() != 2 or ids.shape[1] == 0:
            raise ShapeError(f"input_ids must be [T] or [B, T] with T >= 1, got {tuple(ids.shape)}")
        if ids.min() < 0 or ids.max() >= self.vocab_size:
            raise ShapeError(f"token ids must lie in [0, {self.vocab_size - 1}]")
        return ids, single

    @torch.no_grad()
    def logits(self, input_ids, integer: bool = False) -> torch.Tensor:
        """Teacher-forced logits: [T] -> [T, V] or [B, T] -> [B, T, V]; position t sees
        tokens 0..t through the state (recurrent state or KV cache)."""
        ids, single = self._ids(input_ids)
        state = self.init_state(ids.shape[0])
        out = []
        for t in range(ids.shape[1]):
            step_logits, state = self.step(ids[:, t], state, integer)
            out.append(step_logits)
        result = torch.stack(out, dim=1)
        return result[0] if single else result

    @torch.no_grad()
    def generate(self, input_ids, n: int, integer: bool = False) -> torch.Tensor:
        """Greedy decoding: the prompt followed by ``n`` argmax tokens ([T+n] or [B, T+n])."""
        ids, single = self._ids(input_ids)
        state = self.init_state(ids.shape[0])
        for t in range(ids.shape[1]):
            step_logits, state = self.step(ids[:, t], state, integer)
        tokens = [ids]
        for _ in range(n):
            nxt = step_logits.argmax(dim=-1)
            tokens.append(nxt.unsqueeze(1))
            step_logits, state = self.step(nxt, state, integer)
        result = torch.cat(tokens, dim=1)
        return result[0] if single else result

    @torch.no_grad()
    def trace_integer_matvecs(self, input_ids) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """Every BitLinear's integer matvec at the last position of ``input_ids`` (state
        carried through the earlier tokens): ``[(name, x_q int8 [in], acc int [out])]`` in
        execution order. These are the exact operands a ternary engine must reproduce."""
        ids, _ = self._ids(input_ids)
        if ids.shape[0] != 1:
            raise ShapeError("trace_integer_matvecs takes one sequence")
        projections = self.projections()
        state, seen = self.init_state(1), []

        def record(name, x_q, acc):
            seen.append((name, x_q[0].to(torch.int8).numpy(), acc[0].to(torch.int64).numpy()))

        try:
            for t in range(ids.shape[1]):
                seen.clear()
                for p in projections:
                    p.record = record if t == ids.shape[1] - 1 else None
                _, state = self.step(ids[:, t], state, integer=True)
        finally:
            for p in projections:
                p.record = None
        return list(seen)

    def compare(self, input_ids) -> IntegerPathReport:
        """Run both paths teacher-forced on ``input_ids`` and report their distance."""
        a = self.logits(input_ids, integer=False)
        b = self.logits(input_ids, integer=True)
        agree = (a.argmax(-1) == b.argmax(-1)).float().mean()
        return IntegerPathReport(int(np.prod(a.shape[:-1])), float((a - b).abs().max()),
                                 float(agree))
