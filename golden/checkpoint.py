"""Checkpoint ingest: HGRN-bit (MatMul-free LM) and BitNet b1.58, latent or pre-packed.

:func:`load_checkpoint` reads

* a Hugging Face model directory: ``config.json`` plus ``model.safetensors``, a sharded
  ``model.safetensors.index.json``, or ``pytorch_model.bin`` (optionally sharded);
* a bare ``.safetensors`` file, or a bare torch ``.bin``/``.pt``/``.pth`` file (the
  architecture and sizes are then inferred from the tensor names and shapes).

Torch files are read with ``torch.load(..., weights_only=True)`` only, so a pickle that
would run code is refused (:class:`UnsafeCheckpointError`) instead of executed.

It returns a :class:`ModelDescription`: per layer every BitLinear with its shape, its
ternary codes (``code = weight + 1``, see :mod:`tritium.golden.ternary`), its scale
``s_w`` (``W ~= decode(codes) / s_w``) and the RMSNorm weight applied to its input, plus
the non-ternary tensors as float32.  Latent 16-bit weights are quantised exactly as the
reference BitLinear (:mod:`tritium.golden.quantize`); pre-packed BitNet weights are
unpacked as Hugging Face does and used as they are.

Loading is two-phase: first the names, dtypes and shapes are read (safetensors headers,
no weight data) and checked against the architecture and ``config.json``, and the device
footprint is checked against ``device_mem``; only then are the weights read.  Phase one
also bounds what the files say before anything is sized by it: JSON size and depth,
config.json field types and ranges (:func:`~tritium.golden.shapes.read_config`), shard names confined to the
checkpoint directory, tensor ranks and non-zero sizes, and the host memory the second
phase will take.  Every problem a user can cause raises a :class:`CheckpointError`
subclass whose message names the tensor, field or file and says what to do.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pickle
import shutil
import stat
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

import numpy as np
import torch

from tritium.golden.quantize import pack_hf_bitnet, quantize_weights, unpack_hf_bitnet
# the architectures, the model description and the error family are defined without torch
# in tritium.golden.shapes; they are this module's API too
from tritium.golden.shapes import (  # noqa: F401
    ARCH_BITNET, ARCH_BITNET_PACKED, ARCH_HGRN, ARCHITECTURES, DEVICE_BYTES_PER_PARAM,
    HF_BITNET_PER_BYTE, INFERRED_CONFIG_FIELD, MAX_LAYERS, BitLinear, CheckpointConfigError,
    CheckpointDtypeError, CheckpointError, CheckpointNotFoundError, CheckpointShapeError,
    CorruptCheckpointError, Expected, Layer, LinearSpec, MODEL_PRESETS, ModelDescription,
    ModelSize, Spec,
    UnknownArchitectureError, UnsupportedConfigError, bitnet_spec, hgrn_intermediate_size,
    hgrn_spec, one_line, read_config, read_json)
from tritium.golden.ternary import CODE_INVALID, encode
from tritium.progress import track


_FLOAT_DTYPES = ("bfloat16", "float16", "float32")
_TORCH_SUFFIXES = (".bin", ".pt", ".pth")
# what a torch file starts with: a zip archive (torch >= 1.6) or a pickle (protocol 2-5)
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTO = b"\x80"
_PICKLE_VERSIONS = (b"\x02", b"\x03", b"\x04", b"\x05")
# safetensors' own bound on its JSON header
_ST_MAX_HEADER = 100 << 20
# safetensors dtype tags -> torch dtype names, so both file kinds report dtypes alike
_ST_DTYPES = {"BF16": "bfloat16", "F16": "float16", "F32": "float32", "F64": "float64",
              "U8": "uint8", "I8": "int8", "I16": "int16", "I32": "int32", "I64": "int64",
              "BOOL": "bool", "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2"}


# --- errors of reading files (the rest of the family: tritium.golden.shapes) -------------

class NonFiniteWeightError(CheckpointError):
    """A tensor contains NaN or Inf."""


class CheckpointKeyError(CheckpointError, KeyError):
    """Tensors the architecture needs are missing, or tensors it does not know are present."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnsafeCheckpointError(CheckpointError):
    """A torch pickle needs arbitrary code to load; it was refused, not executed."""


class DeviceMemoryError(CheckpointError):
    """The model does not fit in the configured device memory."""


class ShardPathError(CheckpointError):
    """A shard index names a file outside the checkpoint directory; it is never opened."""


class HostMemoryError(CheckpointError):
    """Reading the checkpoint would take more host memory than the machine has free."""


# --- reading files -----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class TensorInfo:
    key: str
    dtype: str            # torch dtype name, e.g. "bfloat16"
    shape: tuple[int, ...]
    file: Path


#: host bytes per parameter that reading and quantising take beyond the stored bytes: a
#: float32 copy of each non-ternary tensor, a code byte plus float32 work per ternary one
HOST_WORK_BYTES_PER_PARAM = 4


def _safe_shard_path(directory: Path, name: Any, index: Path) -> Path:
    """``directory / name`` for a shard named in a shard index.

    The name must be a relative path with no ``..`` part (checked on the text, so the
    files themselves may be symlinks, as in the Hugging Face cache); anything else is
    refused with ShardPathError and never opened.
    """
    if not isinstance(name, str) or not name.strip():
        raise CorruptCheckpointError(
            f"{index.name} maps a tensor to {name!r}, which is not a file name; "
            "fix or re-download the index")
    parts = PurePosixPath(name)
    # a backslash or colon is a Windows separator or drive: never in a released index
    if parts.is_absolute() or ".." in parts.parts or any(c in name for c in "\\:\0"):
        shown = name if len(name) <= 60 else name[:59] + "\u2026"
        raise ShardPathError(
            f"{index.name} names the shard {shown!r}, which is outside {directory}; an index "
            "may only name files in its own directory: re-download the checkpoint")
    return directory / parts


def _weight_files(directory: Path) -> tuple[list[Path], dict[str, str] | None]:
    """The weight files of an HF model directory, and the shard index's weight_map if any."""
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = directory / index_name
        if index.is_file():
            weight_map = read_json(index).get("weight_map")
            if not isinstance(weight_map, dict) or not weight_map:
                raise CorruptCheckpointError(f"{index} has no weight_map; re-download it")
            files = list(dict.fromkeys(_safe_shard_path(directory, name, index)
                                       for name in weight_map.values()))
            for f in files:
                if not f.is_file():
                    raise CheckpointNotFoundError(
                        f"shard {f.name} listed in {index_name} is missing from {directory}; "
                        "download every shard")
            return files, weight_map
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (directory / name).is_file():
            return [directory / name], None
    raise CheckpointNotFoundError(
        f"{directory} holds no weights: expected model.safetensors, "
        "model.safetensors.index.json or pytorch_model.bin")


def _regular_file_size(path: Path) -> int:
    """Size of ``path``, refusing anything but a regular file (a FIFO or a device would
    block or never end)."""
    st = path.stat()
    if not stat.S_ISREG(st.st_mode):
        raise CorruptCheckpointError(
            f"{path} is not a regular file (a device, FIFO or socket); pass the weight file")
    return st.st_size


def _scan_safetensors(path: Path) -> list[TensorInfo]:
    """Names, dtypes and shapes from a safetensors header, read without mapping the file
    (mapping one larger than memory can fail before anything is checked).  As the format
    requires, each tensor's byte range must match its shape and dtype, and the ranges
    must tile the data section exactly."""
    def corrupt(why: str) -> CorruptCheckpointError:
        return CorruptCheckpointError(
            f"{path} is not a valid safetensors file ({why}); it is truncated or damaged: "
            "download or write it again")

    try:
        size = _regular_file_size(path)
        with path.open("rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise corrupt(f"{size} bytes, shorter than the 8-byte header length")
            n = struct.unpack("<Q", head)[0]
            if n > min(_ST_MAX_HEADER, size - 8):
                raise corrupt(f"a header of {n:,} bytes in a file of {size:,}")
            header = json.loads(f.read(n))
    except OSError as e:
        raise CorruptCheckpointError(f"cannot read {path} ({one_line(e)})") from None
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise corrupt("the header is not JSON") from None
    if not isinstance(header, dict):
        raise corrupt("the header is not a JSON object")
    data_len, infos, ranges = size - 8 - n, [], []
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
            ok = isinstance(dtype, str) and isinstance(shape, list) and all(
                type(v) is int and v >= 0 for v in (*shape, begin, end))
        except (TypeError, KeyError, ValueError):
            ok = False
        if not ok:
            raise corrupt(f"tensor {key!r} has no valid dtype, shape and data_offsets")
        name = _ST_DTYPES.get(dtype, dtype.lower())
        item = getattr(torch, name).itemsize if name in _ST_DTYPES.values() else None
        if item is not None and end - begin != math.prod(shape) * item:
            raise corrupt(f"tensor {key!r} has {end - begin:,} bytes for shape {shape} {dtype}")
        ranges.append((begin, end))
        infos.append(TensorInfo(key, name, tuple(shape), path))
    covered = 0
    for begin, end in sorted(ranges):
        if begin != covered:
            break
        covered = end
    else:
        if covered == data_len:
            return infos
    raise corrupt(f"the tensors' byte ranges do not tile the {data_len:,} data bytes")


def _load_torch(path: Path) -> dict[str, torch.Tensor]:
    """torch.load with weights_only=True: tensors and plain containers, never code.

    The file must start like a torch file (a zip archive or a pickle) and fit in the free
    host memory, since torch.load reads all of it.
    """
    try:
        size = _regular_file_size(path)
        with path.open("rb") as f:
            head = f.read(4)
    except OSError as e:
        raise CorruptCheckpointError(f"cannot read {path} ({one_line(e)})") from None
    if not (head.startswith(_ZIP_MAGIC) or (head[:1] == _PICKLE_PROTO and head[1:2] in
                                            _PICKLE_VERSIONS)):
        raise CorruptCheckpointError(
            f"{path} is not a torch checkpoint (it starts with {head!r}, not a zip archive "
            "or a pickle); pass the checkpoint's weight file, or write it again")
    check_host_memory(size, f"reading {path} (torch.load reads all {size:,} bytes)")
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UnsafeCheckpointError(
            f"{path} is a pickle that needs arbitrary code to load, so it was refused and "
            f"nothing in it ran ({first}); convert it to safetensors from a trusted source"
        ) from None
    except (RuntimeError, EOFError, ValueError, OSError, KeyError, IndexError, TypeError,
            AttributeError, struct.error, zipfile.BadZipFile) as e:
        # a damaged pickle or archive surfaces as any of these, depending on where it breaks
        raise CorruptCheckpointError(
            f"{path} is not a readable torch checkpoint ({type(e).__name__}"
            f"{': ' + one_line(e) if str(e) else ''}); it may be truncated: write it again"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise CorruptCheckpointError(
            f"{path} does not hold a state dict (a mapping of names to tensors)")
    odd = [k for k, v in state.items() if v.layout != torch.strided or v.is_quantized]
    if odd:
        raise CheckpointDtypeError(
            f"tensor {odd[0]} in {path} is sparse or quantised; tritium reads dense tensors: "
            "save the checkpoint with dense weights")
    return state


def _check_tensor(info: TensorInfo) -> None:
    """Refuse a tensor with a zero-size dimension, which no model has, before any shape
    is used to size or divide anything.  (Ranks are checked where shapes are read:
    :func:`_shape` when the architecture is inferred, the spec otherwise.)"""
    if 0 in info.shape:
        raise CheckpointShapeError(
            f"tensor {info.key} in {info.file.name} has shape {list(info.shape)}, with a "
            "zero-size dimension; the checkpoint is corrupt or not a model tritium reads")


class TensorSource:
    """The tensors of a checkpoint, by key: names/dtypes/shapes first, data on demand."""

    def __init__(self, path: Path, files: list[Path], weight_map: dict[str, str] | None):
        self.path = path
        self.infos: dict[str, TensorInfo] = {}
        self._torch: dict[str, torch.Tensor] = {}
        for f in files:
            if f.suffix == ".safetensors":
                found = _scan_safetensors(f)
            else:
                state = _load_torch(f)
                self._torch.update(state)
                found = [TensorInfo(k, str(v.dtype).removeprefix("torch."), tuple(v.shape), f)
                         for k, v in state.items()]
            for info in found:
                _check_tensor(info)
                self.infos[info.key] = info
        if weight_map is not None:
            absent = sorted(k for k, name in weight_map.items()
                            if k not in self.infos or self.infos[k].file != path / name)
            if absent:
                raise CheckpointKeyError(
                    f"the shard index lists {len(absent)} tensor(s) its shards do not hold "
                    f"(e.g. {absent[:3]}); the shards are incomplete: download them again")

    def get(self, key: str) -> torch.Tensor:
        info = self.infos[key]
        if key in self._torch:
            return self._torch[key]
        from safetensors import SafetensorError, safe_open
        try:
            with safe_open(str(info.file), framework="pt") as f:
                return f.get_tensor(key)
        except (SafetensorError, OSError) as e:
            raise CorruptCheckpointError(
                f"cannot read {key} from {info.file} ({one_line(e)}); the file changed or "
                "is damaged: write or download it again") from None


def _resolve(path: Path) -> tuple[dict | None, TensorSource]:
    if not path.exists():
        raise CheckpointNotFoundError(
            f"checkpoint {path} does not exist; pass a model directory, a .safetensors "
            "file or a torch .bin/.pt file")
    if path.is_dir():
        config_path = path / "config.json"
        if not config_path.is_file():
            raise CheckpointNotFoundError(
                f"{path} has no config.json; a Hugging Face model directory needs one "
                "(or pass the weight file itself)")
        config = read_config(config_path)
        return config, TensorSource(path, *_weight_files(path))
    if path.suffix == ".safetensors" or path.suffix in _TORCH_SUFFIXES:
        return None, TensorSource(path, [path], None)
    raise CorruptCheckpointError(
        f"{path} is neither a directory nor a .safetensors/.bin/.pt file; "
        "pass a Hugging Face model directory or a weight file")


# --- recognising the architecture -------------------------------------------------------------

def _detect(config: dict | None, infos: dict[str, TensorInfo]) -> Spec:
    if config is not None:
        archs = config.get("architectures") or []
        model_type = str(config.get("model_type", ""))
        if "HGRNBitForCausalLM" in archs or model_type == "hgrn_bit":
            return hgrn_spec(config)
        if any(a in ("BitNetForCausalLM", "BitnetForCausalLM") for a in archs) \
                or model_type == "bitnet":
            qc = config.get("quantization_config") or {}
            offline = qc.get("quantization_mode") == "offline"
            return bitnet_spec(config, offline, _bitnet_subnorm(infos),
                               offline and _offline_unpacked(infos))
        raise UnknownArchitectureError(
            f"unknown architecture {archs or model_type!r} in config.json; tritium reads "
            "HGRNBitForCausalLM (MatMul-free LM) and BitNetForCausalLM (BitNet b1.58): set "
            "\"architectures\" in config.json to the model's class")
    return _detect_from_keys(infos)


def _offline_unpacked(infos: dict[str, TensorInfo]) -> bool:
    """A pre-quantised BitNet stores its ternary weights as floats [out, in], not uint8."""
    q = infos.get("model.layers.0.self_attn.q_proj.weight")
    return q is not None and q.dtype in _FLOAT_DTYPES


def _bitnet_subnorm(infos: dict[str, TensorInfo]) -> str:
    if any(k.endswith(".self_attn.inner_attn_ln.weight") for k in infos):
        return "inner_attn_ln"
    return "attn_sub_norm"


def _shape(infos: dict[str, TensorInfo], key: str) -> tuple[int, ...]:
    """The shape of ``key``, which must be a 1-D norm gain (``*norm.weight``) or else a 2-D
    weight: the only tensors the architectures are recognised by."""
    if key not in infos:
        raise CheckpointKeyError(f"tensor {key!r} is missing; the checkpoint is incomplete")
    shape = infos[key].shape
    rank = 1 if key.endswith("norm.weight") else 2
    if len(shape) != rank:
        raise CheckpointShapeError(
            f"tensor {key} has shape {list(shape)}, but it must have {rank} dimension(s); "
            "the checkpoint is corrupt or not a model tritium reads")
    return shape


def _layer_count(infos: dict[str, TensorInfo]) -> int:
    indices = {int(k.split(".")[2]) for k in infos
               if k.startswith("model.layers.") and k.split(".")[2].isdecimal()}
    count = max(indices) + 1 if indices else 0
    if count > MAX_LAYERS:
        raise CheckpointShapeError(
            f"the tensor names go up to layer {count - 1}, more than the {MAX_LAYERS} layers "
            "tritium accepts; the checkpoint is corrupt or not a model tritium reads")
    return count


def _detect_from_keys(infos: dict[str, TensorInfo]) -> Spec:
    """Infer the architecture and config from tensor names and shapes (bare weight files)."""
    keys = set(infos)
    n_layers = _layer_count(infos)
    if "model.embeddings.weight" in keys and n_layers:
        vocab, h = _shape(infos, "model.embeddings.weight")
        d = _shape(infos, "model.layers.0.attn.i_proj.weight")[0]
        # num_heads leaves no trace in the tensors (and has no numerical effect): 1
        cfg = {"architectures": ["HGRNBitForCausalLM"], "model_type": "hgrn_bit",
               "hidden_size": h, "num_hidden_layers": n_layers, "vocab_size": vocab,
               "expand_ratio": d / h if d % h else d // h, "num_heads": 1,
               "intermediate_size": _shape(infos, "model.layers.0.mlp.down_proj.weight")[1],
               "use_lower_bound": "model.lower_bounds" in keys, "use_short_conv": False,
               "tie_word_embeddings": False}
        return dataclasses.replace(hgrn_spec(cfg), inferred=True)
    if "model.embed_tokens.weight" in keys and n_layers:
        vocab, h = _shape(infos, "model.embed_tokens.weight")
        packed = "model.layers.0.self_attn.q_proj.weight_scale" in keys
        unpacked = packed and _offline_unpacked(infos)
        rows = HF_BITNET_PER_BYTE if packed and not unpacked else 1
        k_out = _shape(infos, "model.layers.0.self_attn.k_proj.weight")[0] * rows
        q_out = _shape(infos, "model.layers.0.self_attn.q_proj.weight")[0] * rows
        if q_out != h or h % k_out:
            raise CheckpointShapeError(
                f"q_proj has {q_out} outputs and k_proj {k_out} for hidden size {h}; "
                "this is not a BitNet layout tritium understands")
        cfg = {"architectures": ["BitNetForCausalLM"], "model_type": "bitnet",
               "hidden_size": h, "num_hidden_layers": n_layers, "vocab_size": vocab,
               "num_attention_heads": h // k_out, "num_key_value_heads": 1,
               "intermediate_size": _shape(infos, "model.layers.0.mlp.down_proj.weight")[1],
               "tie_word_embeddings": "lm_head.weight" not in keys, INFERRED_CONFIG_FIELD: True}
        if packed:
            cfg["quantization_config"] = {"quant_method": "bitnet",
                                          "linear_class": "autobitlinear",
                                          "quantization_mode": "offline"}
        return dataclasses.replace(bitnet_spec(cfg, packed, _bitnet_subnorm(infos), unpacked),
                                   inferred=True)
    raise UnknownArchitectureError(
        "the tensor names match no known architecture (looked for HGRN-bit's "
        "model.embeddings.weight and BitNet's model.embed_tokens.weight with "
        "model.layers.N.*); tritium reads HGRN-bit and BitNet b1.58 checkpoints")


def _check_against_spec(spec: Spec, infos: dict[str, TensorInfo]) -> None:
    expected = spec.by_key()
    missing = [k for k, e in expected.items() if k not in infos and not e.optional]
    extra = sorted(k for k in infos if k not in expected)
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[:3]})")
        if extra:
            parts.append(f"{len(extra)} unexpected (e.g. {extra[:3]})")
        raise CheckpointKeyError(
            f"tensor names do not match a {spec.arch} model of this config: "
            f"{'; '.join(parts)}; the file is incomplete or belongs to another model")
    for key, e in expected.items():
        if key not in infos:
            continue
        info = infos[key]
        allowed = ("uint8",) if e.role == "packed" else _FLOAT_DTYPES
        if info.dtype not in allowed:
            raise CheckpointDtypeError(
                f"tensor {key} has dtype {info.dtype}, but a {e.role} tensor must be "
                f"{' or '.join(allowed)}; the checkpoint was written wrongly")
        shape_ok = info.shape == e.shape or (e.role == "scale" and math.prod(info.shape) == 1)
        if not shape_ok:
            where = "the other tensors" if spec.inferred else "config.json"
            raise CheckpointShapeError(
                f"tensor {key} has shape {list(info.shape)} but {where} "
                f"(hidden_size={spec.hidden_size}, intermediate_size={spec.intermediate_size}, "
                f"vocab_size={spec.vocab_size}) implies {list(e.shape)}; "
                "config.json and the weights belong to different models")


def check_device_memory(spec: Spec, device_mem: int | None, fmt: str = "t2") -> int:
    """Device bytes the model needs in format ``fmt``; raises DeviceMemoryError if it
    exceeds ``device_mem`` (None: no limit)."""
    need = spec.device_bytes(fmt)
    if device_mem is not None and need > device_mem:
        raise DeviceMemoryError(
            f"the model needs {need:,} bytes of device memory ({fmt} weights, "
            f"{DEVICE_BYTES_PER_PARAM}-byte other tensors) but the device has {device_mem:,}; "
            "use a board with more memory, the denser t3 format, or a smaller model")
    return need


# --- loading ---------------------------------------------------------------------------------

def host_memory_available() -> int | None:
    """Bytes of memory this process can still take: the smaller of /proc/meminfo's
    MemAvailable and the room left under a cgroup v2 memory limit; None where the system
    says neither (then nothing is refused)."""
    found = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        cgroup = Path("/sys/fs/cgroup")
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            found.append(int(limit) - int((cgroup / "memory.current").read_text()))
    except (OSError, ValueError):
        pass
    return max(0, min(found)) if found else None


def check_host_memory(need: int, what: str) -> None:
    """Raise HostMemoryError if ``need`` bytes exceed :func:`host_memory_available`;
    ``what`` names the job in the message ("reading the weights of ...")."""
    free = host_memory_available()
    if free is not None and need > free:
        raise HostMemoryError(
            f"{what} needs about {need:,} bytes of memory but only {free:,} are "
            "free; close other programs, use a machine with more memory, or a smaller model")


def host_bytes(infos: Iterable[TensorInfo]) -> int:
    """Host memory phase two takes for these tensors: each as stored, plus
    HOST_WORK_BYTES_PER_PARAM per parameter."""
    return sum(math.prod(i.shape) * (getattr(torch, i.dtype).itemsize
                                     + HOST_WORK_BYTES_PER_PARAM) for i in infos)


def scan_checkpoint(path: str | os.PathLike) -> tuple[Spec, "TensorSource"]:
    """Phase one: resolve files, recognise the architecture, check names/dtypes/shapes,
    and check that reading the weights fits in the free host memory (HostMemoryError)."""
    config, source = _resolve(Path(path))
    spec = _detect(config, source.infos)
    _check_against_spec(spec, source.infos)
    check_host_memory(host_bytes(source.infos.values()), f"reading the weights of {path}")
    return spec, source


def load_checkpoint(path: str | os.PathLike, *, device_mem: int | None = None,
                    fmt: str = "t2", progress=None) -> ModelDescription:
    """Load and quantise a checkpoint (see the module docstring for the accepted layouts).

    ``device_mem``: bytes of device memory; a model that does not fit (format ``fmt``)
    raises DeviceMemoryError before any weight data is read.  ``progress``: an optional
    :func:`tritium.progress.make_progress` display for the load and quantise steps.
    """
    spec, source = scan_checkpoint(path)
    check_device_memory(spec, device_mem, fmt)
    return describe(spec, source, progress)


def describe(spec: Spec, source: "TensorSource", progress=None) -> ModelDescription:
    """Phase two: read the weights of a scanned checkpoint, check them, quantise them."""
    floats: dict[str, np.ndarray] = {}
    raw: dict[str, torch.Tensor] = {}
    for e in track(progress, spec.tensors, "load", len(spec.tensors)):
        if e.key not in source.infos:  # an optional tensor the file does not hold
            continue
        t = source.get(e.key)
        if e.role != "packed":
            bad = int((~torch.isfinite(t)).sum())
            if bad:
                raise NonFiniteWeightError(
                    f"tensor {e.key} holds {bad} NaN/Inf value(s); the checkpoint is "
                    "corrupt or was saved after training diverged")
        if e.role == "float":
            floats[e.key] = t.float().numpy()
        elif e.role == "tied":
            _check_tied(e.key, t, source.get(_TIED_TO[e.key]))
        else:
            raw[e.key] = t
    by_layer: list[dict[str, BitLinear]] = [{} for _ in range(spec.num_layers)]
    lm_head = None
    for ls in track(progress, spec.linears, "quantise", len(spec.linears)):
        lin = _bitlinear(spec, ls, raw, floats)
        if ls.layer is None:
            lm_head = lin
        else:
            by_layer[ls.layer][ls.name] = lin
    owned = {ls.norm_key for ls in spec.linears} if spec.arch == ARCH_HGRN else set()
    layers = []
    for l in range(spec.num_layers):
        prefix = f"model.layers.{l}."
        tensors = {k[len(prefix):]: v for k, v in floats.items()
                   if k.startswith(prefix) and k not in owned}
        layers.append(Layer(l, by_layer[l], tensors))
    model_tensors = {k: v for k, v in floats.items()
                     if not k.startswith("model.layers.") and k not in owned}
    size = {f.name: getattr(spec, f.name) for f in dataclasses.fields(ModelSize)}
    return ModelDescription(**size, source=source.path, layers=layers, tensors=model_tensors,
                            lm_head=lm_head)


#: the tensor a tied model's output matrix is tied to
_TIED_TO = {"lm_head.weight": "model.embed_tokens.weight"}


def _check_tied(key: str, stored: torch.Tensor, tied_to: torch.Tensor) -> None:
    if not torch.equal(stored.float(), tied_to.float()):
        raise CorruptCheckpointError(
            f"config.json ties the word embeddings (tie_word_embeddings=true) but {key} "
            f"differs from {_TIED_TO[key]}; set tie_word_embeddings to false if the "
            "checkpoint's lm_head is its own matrix")


def _bitlinear(spec: Spec, ls: LinearSpec, raw: dict, floats: dict) -> BitLinear:
    weight = raw[f"{ls.module}.weight"]
    if spec.arch == ARCH_BITNET_PACKED:
        if weight.dtype == torch.uint8:
            codes = unpack_hf_bitnet(weight)
            if (codes == CODE_INVALID).any():
                raise CorruptCheckpointError(
                    f"{ls.module}.weight holds the 2-bit value 3, which is no ternary weight; "
                    "the packed checkpoint is corrupt")
        else:
            values = weight.float()
            if not ((values == -1) | (values == 0) | (values == 1)).all():
                raise CorruptCheckpointError(
                    f"{ls.module}.weight is a pre-quantised (offline) weight but holds values "
                    "other than -1, 0 and +1; store the ternary weights, or the latent "
                    "weights with quantization_mode \"online\"")
            codes = encode(values.to(torch.int8).numpy())
        stored = float(raw[f"{ls.module}.weight_scale"].float().reshape(()))
        if stored <= 0:
            raise CorruptCheckpointError(
                f"{ls.module}.weight_scale is {stored}; a scale must be positive: the file is "
                "damaged or was written wrongly, re-export the checkpoint")
        scale = stored if spec.scale_divides else 1.0 / stored
    else:
        codes, scale = quantize_weights(weight)
    norm = floats.get(ls.norm_key) if ls.norm_key else None
    return BitLinear(ls.module, ls.out_features, ls.in_features, codes, scale, norm, ls.norm_key)


# --- writing small checkpoints in the real layout ----------------------------------------------

def synthetic_config(arch: str, hidden: int, layers: int, vocab: int,
                     preset: str | None = None) -> dict[str, Any]:
    """config.json of a model with the field names of the released checkpoints: a small
    one of these sizes, or with ``preset`` (a :data:`MODEL_PRESETS` name of the same
    family as ``arch``) the released model's head counts and intermediate size, at
    ``hidden``/``vocab`` of the preset and ``layers`` deep (a reduced-depth model of real
    width when fewer than the preset's)."""
    if preset is not None:
        return _preset_config(arch, preset, layers)
    if arch not in ARCHITECTURES:
        raise CheckpointError(f"unknown --arch {arch!r}; choose one of {list(ARCHITECTURES)}")
    if hidden < 4 or hidden % 4 or layers < 1 or vocab < 2:
        raise CheckpointError(
            f"hidden={hidden}, layers={layers}, vocab={vocab}: hidden must be a multiple of 4 "
            "(>= 4), layers >= 1 and vocab >= 2")
    inter = hgrn_intermediate_size(hidden)
    if arch == ARCH_HGRN:
        # as ridger/MMfreeLM-*: intermediate_size null, derived from hidden_ratio
        return {"architectures": ["HGRNBitForCausalLM"], "model_type": "hgrn_bit",
                "attn_mode": "fused_recurrent", "bos_token_id": 1, "eos_token_id": 2,
                "conv_size": 4, "expand_ratio": 1, "hidden_act": "swish", "hidden_ratio": 4,
                "hidden_size": hidden, "initializer_range": 0.02, "intermediate_size": None,
                "max_position_embeddings": 2048, "num_heads": 1, "num_hidden_layers": layers,
                "rms_norm_eps": 1e-6, "share_conv_kernel": True, "tie_word_embeddings": False,
                "torch_dtype": "bfloat16", "use_cache": True, "use_lower_bound": True,
                "use_short_conv": False, "vocab_size": vocab}
    heads = max(1, hidden // 16)
    # as microsoft/bitnet-b1.58-2B-4T(-bf16); packed weights come with "offline"
    return {"architectures": ["BitNetForCausalLM"], "model_type": "bitnet",
            "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "relu2",
            "hidden_size": hidden, "initializer_range": 0.02, "intermediate_size": inter,
            "max_position_embeddings": 4096, "num_attention_heads": heads,
            "num_hidden_layers": layers, "num_key_value_heads": max(1, heads // 4),
            "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "tie_word_embeddings": True,
            "torch_dtype": "bfloat16", "use_cache": True, "vocab_size": vocab,
            "quantization_config": {
                "quant_method": "bitnet", "linear_class": "autobitlinear",
                "quantization_mode": "offline" if arch == ARCH_BITNET_PACKED else "online"}}


#: the family (config.json model_type) each --arch writes
ARCH_MODEL_TYPE = {ARCH_HGRN: "hgrn_bit", ARCH_BITNET: "bitnet", ARCH_BITNET_PACKED: "bitnet"}


def preset_arch(preset: str) -> str:
    """The --arch a preset is written as by default (latent bf16 weights)."""
    kind = _preset(preset)["model_type"]
    return next(a for a, t in ARCH_MODEL_TYPE.items() if t == kind)


def _preset(preset: str) -> dict[str, Any]:
    if preset not in MODEL_PRESETS:
        raise CheckpointError(f"unknown preset {preset!r}; choose one of "
                              f"{sorted(MODEL_PRESETS)}")
    return MODEL_PRESETS[preset]


def _preset_config(arch: str, preset: str, layers: int) -> dict[str, Any]:
    p = _preset(preset)
    if ARCH_MODEL_TYPE.get(arch) != p["model_type"]:
        raise CheckpointError(f"--arch {arch} cannot write preset {preset} (a "
                              f"{p['model_type']} model); use --arch {preset_arch(preset)}")
    cfg = synthetic_config(arch, p["hidden_size"], layers, p["vocab_size"])
    if p["model_type"] == "hgrn_bit":
        # the released configs leave intermediate_size null: it follows from hidden_ratio
        assert hgrn_intermediate_size(p["hidden_size"]) == p["intermediate_size"]
    else:
        cfg.update({k: p[k] for k in ("intermediate_size", "num_attention_heads",
                                      "num_key_value_heads", "tie_word_embeddings")})
    return cfg


def _spec_for(config: dict) -> Spec:
    return _detect(config, {})


def _synthetic_tensor(e: Expected, seed: int, unit_scale: bool = False,
                      std: float = 0.02) -> torch.Tensor:
    # One generator per tensor, seeded by its key: the latent and the pre-packed BitNet of
    # one seed then hold the same latent weights, and the order of writing does not matter.
    g = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(e.key.encode()))
    shape = e.logical or e.shape
    if not unit_scale:
        # as upstream initialises a model: every linear and embedding normal(0, std), the
        # norm gains 1, the HGRN lower bounds 0 (released models are trained from there)
        if e.key.endswith("lower_bounds"):
            return torch.zeros(shape)
        if e.role in ("latent", "packed") or e.key.endswith("embeddings.weight") \
                or e.key.endswith("embed_tokens.weight") or e.key == "lm_head.weight":
            return torch.randn(shape, generator=g) * std
        return torch.ones(shape)
    if e.role in ("latent", "packed"):
        # unit-variance outputs, so the logits of a random model are O(1), not O(0.01)
        return torch.randn(shape, generator=g) * shape[1] ** -0.5
    if e.key.endswith("lower_bounds"):
        return torch.randn(shape, generator=g)
    if e.key.endswith("embeddings.weight") or e.key.endswith("embed_tokens.weight") \
            or e.key == "lm_head.weight":
        return torch.randn(shape, generator=g)
    return 1.0 + 0.1 * torch.randn(shape, generator=g)  # norm gains


def synthetic_layout(config: dict) -> list[tuple[str, str, tuple[int, ...]]]:
    """(key, safetensors dtype, shape) of every tensor :func:`synthetic_tensors` yields
    for ``config``, in that order: known before any weight is drawn, so a file's header
    can be written first."""
    out = []
    for e in _spec_for(config).tensors:
        if e.role in ("scale", "tied"):
            continue
        out.append((e.key, "U8" if e.role == "packed" else "BF16", tuple(e.shape)))
        if e.role == "packed":
            out.append((e.key + "_scale", "BF16", (1,)))
    return out


def synthetic_tensors(config: dict, seed: int = 0, unit_scale: bool = False,
                      keys: Iterable[str] | None = None):
    """Yield (key, tensor) of :func:`synthetic_layout`, drawing one tensor at a time:
    bf16 latent weights, or uint8 packed weights followed by their bf16 weight_scale
    (1/s_w, as "autobitlinear" multiplies by it) for pre-packed BitNet. ``keys``: only
    those (each weight's own generator makes any subset the same tensors).

    By default initialised as upstream initialises a model (normal with std
    ``config["initializer_range"]`` for linears and embeddings, norm gains 1, lower bounds
    0): activations as small as a real model's. ``unit_scale``: the toy scale (linears
    normal(0, 1/in_features) for O(1) activations, unit-normal embeddings, gains
    1 ± 0.1, unit-normal lower bounds), which hides small-activation failures."""
    want = None if keys is None else set(keys)
    std = float(config.get("initializer_range", 0.02))
    for e in _spec_for(config).tensors:
        if e.role in ("scale", "tied"):
            continue
        scale_key = e.key + "_scale"
        if want is not None and e.key not in want and scale_key not in want:
            continue
        latent = _synthetic_tensor(e, seed, unit_scale, std).to(torch.bfloat16)
        if e.role == "packed":
            codes, s_w = quantize_weights(latent)
            del latent
            if want is None or e.key in want:
                yield e.key, torch.from_numpy(pack_hf_bitnet(codes))
            if want is None or scale_key in want:
                yield scale_key, torch.tensor([1.0 / s_w], dtype=torch.bfloat16)
        else:
            yield e.key, latent


def synthetic_state_dict(config: dict, seed: int = 0, progress=None,
                         unit_scale: bool = False) -> dict[str, torch.Tensor]:
    """Every tensor of :func:`synthetic_tensors` at once (small models and tests)."""
    layout = synthetic_layout(config)
    return dict(track(progress, synthetic_tensors(config, seed, unit_scale), "generate",
                      len(layout)))


#: safetensors dtype names -> bytes per element (the ones synthetic checkpoints hold)
_ST_ITEMSIZE = {"BF16": 2, "U8": 1}


def _tensor_bytes(t: torch.Tensor) -> bytes:
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)  # numpy has no bfloat16; the bits are what is stored
    return t.numpy().tobytes()


def write_safetensors_streaming(path: Path, layout, tensors, metadata: dict[str, str],
                                update=lambda nbytes: None) -> int:
    """Write a .safetensors file whose header is made from ``layout`` ((key, dtype, shape)
    in file order) and whose data are the ``tensors`` iterator's, one at a time; returns
    the bytes of tensor data. The safetensors library has no incremental writer
    (``save_file`` needs every tensor in memory at once: the whole model, 5.4 GB for a
    2.7B checkpoint, and a serialised copy), so this writes its documented format
    directly: an 8-byte little-endian header length, the JSON header (``data_offsets``
    relative to the data), padded with spaces to 8 bytes, then the tensors back to back.
    Reading stays with the library. A tensor whose key, dtype or shape differs from
    ``layout`` is a CheckpointError."""
    header: dict[str, Any] = {"__metadata__": metadata}
    offset = 0
    for key, dtype, shape in layout:
        n = math.prod(shape) * _ST_ITEMSIZE[dtype]
        header[key] = {"dtype": dtype, "shape": list(shape),
                       "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for (key, dtype, shape), (got_key, t) in zip(layout, tensors, strict=True):
            data = _tensor_bytes(t)
            if got_key != key or tuple(t.shape) != tuple(shape) or \
                    len(data) != math.prod(shape) * _ST_ITEMSIZE[dtype]:
                raise CheckpointError(f"internal: tensor {got_key} {tuple(t.shape)} does not "
                                      f"match the header's {key} {dtype} {shape}")
            f.write(data)
            update(len(data))
    return offset


def write_checkpoint(out_dir: str | os.PathLike, arch: str, hidden: int, layers: int,
                     vocab: int, seed: int = 0, shards: int = 1, progress=None,
                     unit_scale: bool = False, preset: str | None = None) -> Path:
    """Write a deterministic checkpoint in the Hugging Face layout to ``out_dir``: a
    small model of these sizes, or with ``preset`` a released model's shapes (see
    :func:`synthetic_config`; ``hidden``/``vocab`` are then the preset's).

    Weights are initialised as upstream initialises a model (std 0.02, norm gains 1,
    lower bounds 0) unless ``unit_scale`` (the toy scale of :func:`synthetic_tensors`).
    They are drawn and written one tensor at a time (:func:`write_safetensors_streaming`),
    so host memory holds one tensor, not the model; the progress bar counts bytes.

    Files are written into a temporary sibling directory that is renamed to ``out_dir``
    only when complete, so a failure leaves nothing half-written.  ``out_dir`` must not
    exist or be empty; the disk must have room for the whole checkpoint (CheckpointError
    before anything is written otherwise).  ``shards > 1`` writes
    ``model-0000i-of-0000n.safetensors`` plus ``model.safetensors.index.json``.
    """
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CheckpointError(f"{out} already exists and is not an empty directory; "
                              "choose a new output directory or remove it")
    if shards < 1:
        raise CheckpointError(f"shards must be >= 1, got {shards}")
    config = synthetic_config(arch, hidden, layers, vocab, preset)
    layout = synthetic_layout(config)
    size = sum(math.prod(shape) * _ST_ITEMSIZE[dt] for _, dt, shape in layout)
    out.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(out.parent).free
    if size > free:
        raise CheckpointError(f"the checkpoint needs {size:,} bytes of disk but only "
                              f"{free:,} are free under {out.parent}; free some space or "
                              "write it elsewhere")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        meta = {"format": "pt"}
        per = -(-len(layout) // shards)
        parts = [layout[i * per:(i + 1) * per] for i in range(shards)]
        names = (["model.safetensors"] if shards == 1 else
                 [f"model-{i + 1:05d}-of-{shards:05d}.safetensors" for i in range(shards)])
        if progress is not None:
            task = progress.add_task("write", total=size)
            update = lambda n: progress.update(task, advance=n)  # noqa: E731
        else:
            update = lambda n: None  # noqa: E731
        weight_map = {}
        for name, part in zip(names, parts):
            keys = [k for k, _, _ in part]
            write_safetensors_streaming(tmp / name, part,
                                        synthetic_tensors(config, seed, unit_scale, keys),
                                        meta, update)
            weight_map.update({k: name for k in keys})
        if shards > 1:
            (tmp / "model.safetensors.index.json").write_text(json.dumps(
                {"metadata": {"total_size": size}, "weight_map": weight_map}, indent=2) + "\n")
        # mkdtemp makes a private 0700 directory; a checkpoint is ordinary shared data
        umask = os.umask(0)
        os.umask(umask)
        for f in tmp.iterdir():
            f.chmod(0o666 & ~umask)
        tmp.chmod(0o777 & ~umask)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
