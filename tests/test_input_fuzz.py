"""Every user-reachable input refused in one line: a fuzz over config.json fields, JSON
shape, tensor ranks/sizes/dtypes, damaged safetensors and torch files, shard indexes that
point outside the checkpoint, and a checkpoint larger than memory; plus the command-line
values of `sim`, `make-checkpoint` and argparse itself.

The checkpoints are real: the project's writer makes valid ones in the Hugging Face key
layout, each case corrupts a copy.  Every case runs the CLI entry (`tritium.cli.main`,
what `python -m tritium.cli` runs) as `inspect` and as `load` (the checkpoint is read
before the device is opened, so no device is needed); a sample also runs as a real
`python -m tritium.cli` process.  Each must exit non-zero with exactly one line on stderr,
naming what is wrong, and no traceback.
"""

import json
import math
import os
import shutil
import stat
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from tritium import cli
from tritium.golden.checkpoint import write_checkpoint
from tritium.golden.shapes import MAX_DIM, MAX_LAYERS, MAX_RATIO

HIDDEN, LAYERS, VOCAB = 16, 2, 32
# nothing listens on the discard port: if a case's checkpoint were accepted, `load`
# would fail on the device instead, and the message comparison below would catch that
NO_DEVICE = "socket://127.0.0.1:9"
PROJ = "model.layers.0.attn.i_proj.weight"
EMB = "model.embeddings.weight"
NORM = "model.layers.0.attn_norm.weight"


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    root = tmp_path_factory.mktemp("bases")
    made = {"hgrn": write_checkpoint(root / "hgrn", "hgrn-bit", HIDDEN, LAYERS, VOCAB),
            "sharded": write_checkpoint(root / "sharded", "hgrn-bit", HIDDEN, LAYERS, VOCAB,
                                        shards=2),
            "bitnet": write_checkpoint(root / "bitnet", "bitnet", HIDDEN, LAYERS, VOCAB),
            "packed": write_checkpoint(root / "packed", "bitnet-packed", HIDDEN, LAYERS,
                                       VOCAB)}
    for path in made.values():  # each base is valid: the cases below break only what they say
        assert cli.main(["inspect", str(path), "--quiet"]) == 0
    return made


# --- mutations ---------------------------------------------------------------------------------

def _config(d: Path) -> dict:
    return json.loads((d / "config.json").read_text())


def set_field(name, value):
    def edit(d):
        cfg = _config(d)
        cfg[name] = value
        (d / "config.json").write_text(json.dumps(cfg))
    return edit


def drop_fields(*names):
    def edit(d):
        cfg = _config(d)
        for name in names:
            cfg.pop(name, None)
        (d / "config.json").write_text(json.dumps(cfg))
    return edit


def config_text(text):
    def edit(d):
        (d / "config.json").write_text(text) if isinstance(text, str) \
            else (d / "config.json").write_bytes(text)
    return edit


def tensors(fn, file="model.safetensors"):
    """Rewrite a safetensors file of the checkpoint through ``fn(state)``."""
    def edit(d):
        state = load_file(str(d / file))
        fn(state)
        save_file(state, str(d / file))
    return edit


def replace(key, value):
    return tensors(lambda s: s.__setitem__(key, value))


def retype(key, dtype):
    return tensors(lambda s: s.__setitem__(key, s[key].to(dtype)))


def file_bytes(fn, file="model.safetensors"):
    """Replace a file's bytes by ``fn(old_bytes)``."""
    def edit(d):
        (d / file).write_bytes(fn((d / file).read_bytes()))
    return edit


def st_header(header: dict, data: bytes = b"", length: int | None = None):
    """A safetensors file written by hand: u64 header length, JSON header, data."""
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def header_edit(fn, file="model.safetensors"):
    """Rewrite the JSON header of a real safetensors file through ``fn(header)``, keeping
    its data bytes."""
    def edit(d):
        raw = (d / file).read_bytes()
        n = struct.unpack("<Q", raw[:8])[0]
        header = json.loads(raw[8:8 + n])
        fn(header)
        (d / file).write_bytes(st_header(header, raw[8 + n:]))
    return edit


def _entry_set(key, **values):
    return header_edit(lambda h: h[key].update(values))


def bare(name, fn):
    """Pass the checkpoint's weights as a bare file ``name``, made by ``fn(dir) -> bytes``
    (or None: ``fn`` wrote the file itself)."""
    def edit(d):
        data = fn(d)
        if data is not None:
            (d / name).write_bytes(data)
        return d / name
    return edit


def torch_file(obj):
    def make(d):
        torch.save(obj, d / "out.bin")
        return (d / "out.bin").read_bytes()
    return make


def as_torch_dir(fn):
    """The checkpoint directory with pytorch_model.bin = ``fn(dir) -> bytes`` instead of
    model.safetensors."""
    def edit(d):
        data = fn(d)
        (d / "model.safetensors").unlink()
        (d / "pytorch_model.bin").write_bytes(data)
    return edit


def index(weight_map, raw=None):
    """A model.safetensors.index.json with this weight_map (or raw text) next to the
    checkpoint's single file."""
    def edit(d):
        text = raw if raw is not None else json.dumps({"metadata": {}, "weight_map": weight_map})
        (d / "model.safetensors.index.json").write_text(text)
    return edit


def point_shard(name):
    """The sharded base with its first shard's entries in the index renamed to ``name``."""
    def edit(d):
        path = d / "model.safetensors.index.json"
        idx = json.loads(path.read_text())
        first = sorted(set(idx["weight_map"].values()))[0]
        idx["weight_map"] = {k: (name if v == first else v) for k, v in idx["weight_map"].items()}
        path.write_text(json.dumps(idx))
    return edit


def deep_json(depth, inner="1"):
    return "[" * depth + inner + "]" * depth


# --- the cases: (id, base, mutation, words one of which the error line must contain) -------

def _field_cases():
    bad_any = ["x", "", [], {}, [1], {"a": 1}]
    bad_int = bad_any + ["16", -1, 0, 1.5, 16.0, True, False, 10 ** 30, 2 ** 63, 1e308,
                         float("nan"), float("inf"), float("-inf")]
    bad_num = bad_any + ["1", -1, -1e-9, 0, True, float("nan"), float("inf"), 1e308, 10 ** 30]
    bad_bool = ["true", "false", "", 1, 0, [], {}, "x"]
    cases = []

    def add(base, name, values):
        done = sum(c[0].startswith(f"{base}-{name}-") for c in cases)
        for i, v in enumerate(values, done):
            cases.append((f"{base}-{name}-{i}", base, set_field(name, v), (name, "config")))

    for name in ("hidden_size", "num_hidden_layers", "vocab_size", "num_heads"):
        add("hgrn", name, bad_int)
    # type-valid values that disagree with the tensors
    add("hgrn", "hidden_size", [HIDDEN + 4, 2 * HIDDEN, MAX_DIM + 1])
    add("hgrn", "num_hidden_layers", [LAYERS + 1, 1, MAX_LAYERS + 1])
    add("hgrn", "vocab_size", [VOCAB - 1, VOCAB + 1])
    add("hgrn", "intermediate_size", bad_int + [100, 2 ** 21])
    add("hgrn", "expand_ratio", bad_num + [2, 0.5, MAX_RATIO + 1])
    # 16 * 48 * 2/3 rounds up to 512 channels, not the tensors' 256
    add("hgrn", "hidden_ratio", bad_num + [48, MAX_RATIO + 1])
    add("hgrn", "rms_norm_eps", bad_num + [1.5])
    add("hgrn", "use_short_conv", bad_bool + [True])
    add("hgrn", "use_lower_bound", bad_bool + [False])
    add("hgrn", "tie_word_embeddings", bad_bool + [True])
    add("hgrn", "architectures", [5, "HGRNBitForCausalLM", [5], [[]], {}, True, 1.5])
    add("hgrn", "model_type", [5, [], {}, True, None])  # None: with architectures dropped
    for name in ("num_attention_heads", "num_key_value_heads", "intermediate_size"):
        add("bitnet", name, bad_int)
    add("bitnet", "num_attention_heads", [3, HIDDEN + 1])
    add("bitnet", "rms_norm_eps", bad_num)
    add("packed", "quantization_config",
        [5, "x", [], True, {"quantization_mode": 5}, {"linear_class": []},
         {"quantization_mode": "online"}, {"quant_method": "bitnet"}])
    # model_type=None only fails once the architectures list is gone as well
    cases = [(i, b, (lambda e: (lambda d: (drop_fields("architectures")(d), e(d))))(m)
              if i.startswith("hgrn-model_type") else m, w) for i, b, m, w in cases]
    for name in ("hidden_size", "num_hidden_layers", "vocab_size"):
        cases.append((f"hgrn-missing-{name}", "hgrn", drop_fields(name), (name,)))
    cases.append(("bitnet-missing-intermediate_size", "bitnet",
                  drop_fields("intermediate_size"), ("intermediate_size",)))
    cases.append(("hgrn-missing-architecture", "hgrn",
                  drop_fields("architectures", "model_type"), ("architecture",)))
    return cases


def _json_cases():
    big_int = '{"hidden_size": ' + "9" * 5000 + "}"
    return [
        ("json-empty", "hgrn", config_text(""), ("config.json",)),
        ("json-truncated", "hgrn", lambda d: config_text(
            (d / "config.json").read_text()[:40])(d), ("config.json",)),
        ("json-not-utf8", "hgrn", config_text(b"\xff\xfe{\x00}"), ("config.json",)),
        ("json-list", "hgrn", config_text("[1, 2]"), ("config.json",)),
        ("json-string", "hgrn", config_text('"config"'), ("config.json",)),
        ("json-null", "hgrn", config_text("null"), ("config.json",)),
        ("json-nan", "hgrn", config_text("NaN"), ("config.json",)),
        ("json-deep-200k", "hgrn", config_text(deep_json(200_000)), ("config.json",)),
        ("json-deep-objects", "hgrn",
         config_text('{"a": ' + '{"b": ' * 100_000 + "1" + "}" * 100_001), ("config.json",)),
        ("json-deep-900-in-field", "hgrn", set_field("hidden_size", json.loads(deep_json(900))),
         ("config.json",)),
        ("json-deep-33", "hgrn", set_field("extra", json.loads(deep_json(33))),
         ("config.json",)),
        ("json-huge-int", "hgrn", config_text(big_int), ("config.json",)),
        ("json-too-large", "hgrn", config_text("{" + " " * (17 << 20) + "}"),
         ("config.json",)),
        ("json-is-a-directory", "hgrn",
         lambda d: ((d / "config.json").unlink(), (d / "config.json").mkdir()),
         ("config.json",)),
        ("json-missing", "hgrn", lambda d: (d / "config.json").unlink(), ("config.json",)),
    ]


def _shape_cases():
    h, v = HIDDEN, VOCAB
    bf = dict(dtype=torch.bfloat16)
    cases = [
        ("emb-1d", replace(EMB, torch.zeros(v * h, **bf)), EMB),
        ("emb-zero-width", replace(EMB, torch.zeros(v, 0, **bf)), EMB),
        ("emb-zero-rows", replace(EMB, torch.zeros(0, h, **bf)), EMB),
        ("emb-3d", replace(EMB, torch.zeros(v, h, 1, **bf)), EMB),
        ("emb-scalar", replace(EMB, torch.zeros((), **bf)), EMB),
        ("emb-transposed", replace(EMB, torch.zeros(h, v, **bf)), EMB),
        ("proj-1d", replace(PROJ, torch.zeros(h * h, **bf)), PROJ),
        ("proj-zero", replace(PROJ, torch.zeros(0, h, **bf)), PROJ),
        ("proj-3d", replace(PROJ, torch.zeros(h, h, 1, **bf)), PROJ),
        ("norm-2d", replace(NORM, torch.ones(1, h, **bf)), NORM),
        ("norm-empty", replace(NORM, torch.ones(0, **bf)), NORM),
        ("lower-bounds-1d", replace("model.lower_bounds", torch.zeros(LAYERS * h, **bf)),
         "model.lower_bounds"),
    ]
    for dt in (torch.int32, torch.int8, torch.uint8, torch.int64, torch.bool, torch.float64):
        name = str(dt).removeprefix("torch.")
        cases.append((f"proj-{name}", retype(PROJ, dt), PROJ))
        cases.append((f"norm-{name}", retype(NORM, dt), NORM))
    cases += [("proj-nan", tensors(lambda s: s[PROJ].view(-1).__setitem__(7, math.nan)), PROJ),
              ("emb-inf", tensors(lambda s: s[EMB].view(-1).__setitem__(0, math.inf)), EMB)]
    out = [(f"shape-{i}", "hgrn", m, (key,)) for i, m, key in cases]
    pk = "model.layers.0.mlp.up_proj.weight"
    out += [
        ("shape-packed-as-bf16", "packed", retype(pk, torch.bfloat16), (pk,)),
        ("shape-packed-zero", "packed", replace(pk, torch.zeros(0, h, dtype=torch.uint8)), (pk,)),
        ("shape-packed-code-3", "packed", tensors(lambda s: s[pk].fill_(0xFF)), (pk,)),
        ("shape-scale-int", "packed", retype(pk + "_scale", torch.int32), (pk,)),
        ("shape-scale-zero", "packed", tensors(lambda s: s[pk + "_scale"].zero_()), (pk,)),
        ("shape-scale-empty", "packed",
         replace(pk + "_scale", torch.zeros(0, dtype=torch.bfloat16)), (pk,)),
        ("shape-extra-3d", "hgrn", replace("model.extra", torch.zeros(2, 2, 2)), ("model.extra",)),
        # a model tritium does not run is named as such, not as its first odd tensor
        ("shape-short-conv", "hgrn", lambda d: (set_field("use_short_conv", True)(d), replace(
            "model.layers.0.attn.i_conv1d.weight", torch.zeros(h, 1, 4, **bf))(d)), ("short",)),
    ]
    return out


def _bare_safetensors(edit_state):
    def make(d):
        state = load_file(str(d / "model.safetensors"))
        edit_state(state)
        save_file(state, str(d / "bare.safetensors"))
    return bare("bare.safetensors", make)


def _file_cases():
    st = "model.safetensors"
    good = {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]}
    cases = []
    for frac in (0, 1, 7, 8, 9, 40, 0.5, 0.9, -1):
        cut = (lambda n, f=frac: f if isinstance(f, int) and f >= 0 else
               int(n * f) if f > 0 else n + f)
        cases.append((f"st-truncated-{frac}", "hgrn",
                      file_bytes(lambda b, c=cut: b[:c(len(b))]), (st,)))
    cases += [
        ("st-garbage", "hgrn", file_bytes(lambda b: bytes((i * 151 + 7) % 256
                                                          for i in range(len(b)))), (st,)),
        ("st-text", "hgrn", file_bytes(lambda b: b"not a safetensors file\n" * 50), (st,)),
        ("st-header-length-huge", "hgrn", file_bytes(lambda b: st_header(
            {"x": good}, b"\0" * 8, length=2 ** 63)), (st,)),
        ("st-header-not-json", "hgrn", file_bytes(lambda b: struct.pack("<Q", 8) + b"{{{{{{{{"),
         (st,)),
        ("st-header-is-list", "hgrn", file_bytes(lambda b: st_header([1, 2])), (st,)),
        ("st-bad-offsets", "hgrn", file_bytes(lambda b: st_header(
            {"x": {**good, "data_offsets": [0, 4000]}}, b"\0" * 8)), (st,)),
        ("st-claims-huge-shape", "hgrn", file_bytes(lambda b: st_header(
            {"x": {**good, "shape": [2 ** 40, 2 ** 40]}}, b"\0" * 8)), (st,)),
        ("st-unknown-dtype", "hgrn", _entry_set(PROJ, dtype="Q7"), (PROJ,)),
        ("st-dtype-not-string", "hgrn", _entry_set(PROJ, dtype=7), (PROJ,)),
        ("st-shape-vs-bytes", "hgrn", _entry_set(PROJ, shape=[HIDDEN, HIDDEN + 1]), (PROJ,)),
        ("st-shape-not-list", "hgrn", _entry_set(PROJ, shape="16x16"), (PROJ,)),
        ("st-shape-float", "hgrn", _entry_set(PROJ, shape=[16.0, 16]), (PROJ,)),
        ("st-offsets-short", "hgrn", _entry_set(PROJ, data_offsets=[0]), (PROJ,)),
        ("st-offsets-beyond", "hgrn", header_edit(lambda h: h[PROJ].update(data_offsets=[
            h[PROJ]["data_offsets"][0] + 10 ** 9, h[PROJ]["data_offsets"][1] + 10 ** 9])),
         ("tile",)),
        ("st-offsets-overlap", "hgrn", header_edit(lambda h: h[PROJ].update(
            data_offsets=h[EMB]["data_offsets"]) if h[PROJ]["shape"] == h[EMB]["shape"] else
            h[PROJ].update(data_offsets=h[NORM]["data_offsets"], shape=h[NORM]["shape"])),
         (st,)),
        ("st-entry-not-object", "hgrn", header_edit(lambda h: h.__setitem__(PROJ, [1, 2])),
         (PROJ,)),
        ("st-negative-shape", "hgrn", file_bytes(lambda b: st_header(
            {"x": {**good, "shape": [-2, -2]}}, b"\0" * 8)), (st,)),
        ("st-empty-header", "hgrn", file_bytes(lambda b: st_header({})), ("missing",)),
        ("st-is-a-directory", "hgrn", lambda d: ((d / st).unlink(), (d / st).mkdir()),
         ("weights",)),
    ]
    # bare weight files: the architecture is inferred from the tensors
    cases += [
        ("bare-emb-1d", "hgrn", _bare_safetensors(
            lambda s: s.__setitem__(EMB, torch.zeros(VOCAB * HIDDEN))), (EMB,)),
        ("bare-emb-zero-width", "hgrn", _bare_safetensors(
            lambda s: s.__setitem__(EMB, torch.zeros(VOCAB, 0))), (EMB,)),
        ("bare-gnorm-2d", "hgrn", _bare_safetensors(
            lambda s: s.__setitem__("model.layers.0.attn.g_norm.weight",
                                    torch.ones(1, HIDDEN))), ("g_norm",)),
        ("bare-gnorm-zero", "hgrn", _bare_safetensors(
            lambda s: s.__setitem__("model.layers.0.attn.g_norm.weight", torch.ones(0))),
         ("g_norm",)),
        ("bare-proj-missing", "hgrn", _bare_safetensors(lambda s: s.pop(PROJ)), (PROJ,)),
        ("bare-layer-index-huge", "hgrn", _bare_safetensors(
            lambda s: s.__setitem__("model.layers.99999999999999.x", torch.zeros(1))),
         ("layer",)),
        ("bare-layer-index-unicode", "hgrn", _bare_safetensors(
            lambda s: s.__setitem__("model.layers.\u00b2.x", torch.zeros(1))), ("model.layers",)),
        ("bare-bitnet-kproj-zero", "bitnet", _bare_safetensors(
            lambda s: s.__setitem__("model.layers.0.self_attn.k_proj.weight",
                                    torch.zeros(0, HIDDEN))), ("k_proj",)),
        ("bare-unknown-suffix", "hgrn", bare("weights.txt", lambda d: b"weights"),
         ("weights.txt",)),
        ("bare-fifo", "hgrn", bare("w.safetensors", lambda d: os.mkfifo(d / "w.safetensors")),
         ("w.safetensors",)),
        ("bare-fifo-bin", "hgrn", bare("w.bin", lambda d: os.mkfifo(d / "w.bin")), ("w.bin",)),
        ("bare-dev-zero", "hgrn", bare("z.safetensors", lambda d: os.symlink(
            "/dev/zero", d / "z.safetensors")), ("z.safetensors",)),
        ("bare-dev-zero-bin", "hgrn",
         bare("z.bin", lambda d: os.symlink("/dev/zero", d / "z.bin")), ("z.bin",)),
    ]
    # torch files: text named .bin, damaged archives and pickles, odd contents
    state = lambda d: load_file(str(d / st))
    text = lambda d: b"these are not the weights you are looking for\n" * 20
    for suffix in (".bin", ".pt", ".pth"):
        cases.append((f"torch-text{suffix}", "hgrn", bare("w" + suffix, text), ("w" + suffix,)))
    torch_zip = lambda d: torch_file(state(d))(d)

    def legacy(d):
        torch.save(state(d), d / "legacy.bin", _use_new_zipfile_serialization=False)
        return (d / "legacy.bin").read_bytes()

    cases += [
        ("torch-dir-text", "hgrn", as_torch_dir(text), ("pytorch_model.bin",)),
        ("torch-empty", "hgrn", bare("w.bin", lambda d: b""), ("w.bin",)),
        ("torch-zip-truncated", "hgrn", bare("w.bin", lambda d: torch_zip(d)[:3000]), ("w.bin",)),
        ("torch-zip-magic-only", "hgrn", bare("w.bin", lambda d: b"PK\x03\x04" + b"\0" * 60),
         ("w.bin",)),
        ("torch-zip-garbled", "hgrn", bare("w.bin", lambda d: bytes(
            b ^ 0x5A if 200 < i < 4000 else b for i, b in enumerate(torch_zip(d)))), ("w.bin",)),
        ("torch-legacy-truncated", "hgrn", bare("w.bin", lambda d: legacy(d)[:500]), ("w.bin",)),
        ("torch-pickle-text", "hgrn", bare("w.bin", lambda d: b"\x80\x02hello world"), ("w.bin",)),
        ("torch-list", "hgrn", bare("w.bin", torch_file([torch.zeros(2)])), ("w.bin",)),
        ("torch-non-tensor-values", "hgrn", bare("w.bin", torch_file({EMB: [1, 2]})), ("w.bin",)),
        ("torch-int-keys", "hgrn", bare("w.bin", torch_file({1: torch.zeros(2)})), ("w.bin",)),
        ("torch-sparse", "hgrn", bare("w.bin", lambda d: torch_file(
            {**state(d), EMB: state(d)[EMB].float().to_sparse()})(d)), (EMB,)),
        ("torch-emb-1d", "hgrn", bare("w.bin", lambda d: torch_file(
            {**state(d), EMB: torch.zeros(VOCAB * HIDDEN)})(d)), (EMB,)),
        ("torch-dir-zero-width", "hgrn", as_torch_dir(lambda d: torch_file(
            {**state(d), EMB: torch.zeros(VOCAB, 0)})(d)), (EMB,)),
    ]
    return cases


def _shard_cases():
    names = ["/etc/passwd", "../../etc/passwd", "../hgrn/model.safetensors",
             "sub/../../x.safetensors", "..", "/", "C:\\Windows\\x.safetensors",
             "..\\..\\x.safetensors", "\\\\server\\share\\x.safetensors", "a\0b.safetensors",
             "", "   ", 5, None, [], {"a": 1}, "missing.safetensors"]
    cases = [(f"shard-name-{i}", "sharded", point_shard(n), ("index",)) for i, n in
             enumerate(names)]
    cases[-1] = (cases[-1][0], "sharded", point_shard(names[-1]), ("missing.safetensors",))
    cases += [
        ("shard-index-no-map", "hgrn", index(None, raw='{"metadata": {}}'), ("weight_map",)),
        ("shard-index-map-list", "hgrn", index(["model.safetensors"]), ("weight_map",)),
        ("shard-index-map-empty", "hgrn", index({}), ("weight_map",)),
        ("shard-index-not-json", "hgrn", index(None, raw="{ nope"), ("index",)),
        ("shard-index-deep", "hgrn", index(None, raw=deep_json(200_000)), ("index",)),
        ("shard-index-list", "hgrn", index(None, raw="[]"), ("index",)),
        ("shard-index-lies", "hgrn", index({"model.norm.weight": "model.safetensors",
                                            "not.a.tensor": "model.safetensors"}),
         ("not.a.tensor",)),
    ]
    return cases


CASES = _field_cases() + _json_cases() + _shape_cases() + _file_cases() + _shard_cases()


def test_case_ids_unique_and_plenty():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 250


def _prepare(bases, tmp_path, base, mutate) -> Path:
    d = tmp_path / "ck"
    shutil.copytree(bases[base], d)
    target = mutate(d)
    return target if isinstance(target, Path) else d


def _one_error_line(rc, out, err, command) -> str:
    assert rc != 0, f"accepted: {out[:300]}"
    assert "Traceback" not in err and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    prefix = f"tritium {command}: error: "
    assert lines[0].startswith(prefix), lines[0]
    return lines[0][len(prefix):]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line(case, bases, tmp_path, capsys):
    _, base, mutate, words = case
    path = _prepare(bases, tmp_path, base, mutate)
    rc = cli.main(["inspect", str(path), "--quiet"])
    cap = capsys.readouterr()
    message = _one_error_line(rc, cap.out, cap.err, "inspect")
    assert any(w in message for w in words), message
    assert len(message) < 400, message
    rc = cli.main(["load", str(path), "--device", NO_DEVICE, "--quiet"])
    cap = capsys.readouterr()
    # the same refusal, before any device is opened
    assert _one_error_line(rc, cap.out, cap.err, "load") == message


# a few of the issue's own cases (each process pays the torch import, ~4 s on a busy machine)
SUBPROCESS_SAMPLE = ["hgrn-architectures-0", "torch-text.bin", "shard-name-0"]


def test_real_process_sample(bases, tmp_path):
    """The issue's cases through `python -m tritium.cli`, in parallel processes: three
    checkpoints under `inspect`, and `sim ternary-dot --vectors -1` (an argparse refusal)."""
    by_id = {c[0]: c for c in CASES}
    commands = [["sim", "ternary-dot", "--vectors", "-1"]]
    for i, name in enumerate(SUBPROCESS_SAMPLE):
        _, base, mutate, _ = by_id[name]
        commands.append(["inspect", str(_prepare(bases, tmp_path / str(i), base, mutate)),
                         "--quiet"])
    procs = [subprocess.Popen([sys.executable, "-m", "tritium.cli", *c], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for c in commands]
    for cmd, p in zip(commands, procs):
        out, err = p.communicate(timeout=300)
        assert p.returncode == 2, (cmd, err)
        _one_error_line(p.returncode, out, err, cmd[0] if cmd[0] == "inspect" else
                        " ".join(cmd[:2]))


def test_confinement_still_reads_symlinked_and_nested_shards(bases, tmp_path):
    """The Hugging Face cache layout: snapshot files are symlinks into ../../blobs. Shard
    names are confined on their text, so that layout (and a shard in a subfolder) loads."""
    from tritium.golden.checkpoint import load_checkpoint
    snap = tmp_path / "snapshots" / "rev"
    shutil.copytree(bases["sharded"], snap)
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    idx_path = snap / "model.safetensors.index.json"
    idx = json.loads(idx_path.read_text())
    first, second = sorted(set(idx["weight_map"].values()))
    (snap / first).rename(blobs / "sha-1")
    (snap / first).symlink_to(Path("..", "..", "blobs", "sha-1"))
    (snap / "sub").mkdir()
    (snap / second).rename(snap / "sub" / second)
    idx["weight_map"] = {k: (f"sub/{v}" if v == second else v)
                         for k, v in idx["weight_map"].items()}
    idx_path.write_text(json.dumps(idx))
    ref, got = load_checkpoint(bases["sharded"]), load_checkpoint(snap)
    pairs = list(zip(ref.bitlinears(), got.bitlinears()))
    assert len(pairs) == 2 * 6 + 1
    for a, b in pairs:
        assert a.name == b.name and a.scale == b.scale and (a.codes == b.codes).all()


# --- a checkpoint larger than memory -----------------------------------------------------------

def _mem_total() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no MemTotal in /proc/meminfo")


@pytest.mark.skipif(not Path("/proc/meminfo").exists(), reason="needs Linux /proc/meminfo")
def test_checkpoint_larger_than_memory_is_refused_unread(tmp_path, capsys):
    """A real HGRN-bit checkpoint whose embedding alone is twice the machine's RAM, stored
    as a sparse file (no disk used): refused before a byte of weight data is read."""
    h = 4096
    vocab = -(-2 * _mem_total() // (2 * h))  # bf16 [vocab, h] > 2 x RAM
    base = write_checkpoint(tmp_path / "small", "hgrn-bit", HIDDEN, 1, VOCAB)
    cfg = _config(base)
    cfg.update(hidden_size=h, vocab_size=vocab, num_hidden_layers=1)
    inter = 256 * -(-int(h * 4 * 2 / 3) // 256)  # HGRN-bit's intermediate for hidden_ratio 4
    shapes = {EMB: [vocab, h], "model.lower_bounds": [1, h], "model.norm.weight": [h],
              "lm_head.weight": [vocab, h], "lm_head.norm.weight": [h]}
    p = "model.layers.0."
    shapes.update({p + "attn_norm.weight": [h], p + "mlp_norm.weight": [h],
                   p + "attn.g_norm.weight": [h],
                   p + "mlp.gate_proj.weight": [2 * inter, h],
                   p + "mlp.down_proj.weight": [h, inter],
                   p + "mlp.gate_proj.norm.weight": [h], p + "mlp.down_proj.norm.weight": [inter]})
    for proj in "ifgo":
        shapes[p + f"attn.{proj}_proj.weight"] = [h, h]
        shapes[p + f"attn.{proj}_proj.norm.weight"] = [h]
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for key in sorted(shapes):
        size = math.prod(shapes[key]) * 2
        header[key] = {"dtype": "BF16", "shape": shapes[key],
                       "data_offsets": [offset, offset + size]}
        offset += size
    out = tmp_path / "huge"
    out.mkdir()
    (out / "config.json").write_text(json.dumps(cfg))
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(out / "model.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        f.truncate(8 + len(raw) + offset)  # a hole: sparse, nothing written
    assert os.stat(out / "model.safetensors").st_size > 2 * _mem_total()
    rc = cli.main(["inspect", str(out), "--quiet"])
    cap = capsys.readouterr()
    message = _one_error_line(rc, cap.out, cap.err, "inspect")
    assert "memory" in message and "bytes" in message, message
    # the same for a torch file that large: torch.load would read it all
    big = tmp_path / "huge.bin"
    with open(big, "wb") as f:
        f.write(b"PK\x03\x04")
        f.truncate(2 * _mem_total())
    rc = cli.main(["inspect", str(big), "--quiet"])
    cap = capsys.readouterr()
    assert "memory" in _one_error_line(rc, cap.out, cap.err, "inspect")


# --- command-line values -------------------------------------------------------------------------

def _main(args) -> int:
    """cli.main in this process; argparse's refusals end in SystemExit, as in the real one."""
    try:
        rc = cli.main(args)
    except SystemExit as e:
        rc = e.code
    return rc


def test_verilog_output_follows_the_umask(tmp_path, capsys):
    out = tmp_path / "td.v"
    old = os.umask(0o022)
    try:
        assert cli.main(["verilog", "ternary-dot", "-o", str(out)]) == 0
        assert stat.S_IMODE(out.stat().st_mode) == 0o644
        os.umask(0o077)
        assert cli.main(["verilog", "ternary-dot", "-o", str(out)]) == 0
        assert stat.S_IMODE(out.stat().st_mode) == 0o600
    finally:
        os.umask(old)
    assert [p.name for p in tmp_path.iterdir()] == ["td.v"]  # no temporary left
    capsys.readouterr()


@pytest.mark.parametrize("args,words", [
    (["sim", "ternary-dot", "--vectors", "-1"], ("--vectors", "-1")),
    (["sim", "ternary-dot", "--vectors", "0"], ("--vectors",)),
    (["sim", "ternary-dot", "--vectors", "1000000000"], ("--vectors",)),
    (["sim", "ternary-dot", "--seed", "-5"], ("--seed",)),
    (["sim", "ternary-dot", "--length", "0"], ("--length",)),
    (["sim", "ternary-dot", "--show", "-1"], ("--show",)),
    (["sim", "tmv", "--jobs", "0"], ("--jobs",)),
    (["sim", "tmv", "--max-shape", "-3"], ("--max-shape",)),
    (["sim", "spgemm", "--clock", "-1"], ("--clock",)),
    (["sim", "spgemm", "--clock", "nan"], ("--clock",)),
    (["make-checkpoint", "--arch", "hgrn-bit", "--layers", "0", "-o", "x"], ("--layers",)),
    (["make-checkpoint", "--arch", "hgrn-bit", "--seed", "-1", "-o", "x"], ("--seed",)),
    (["make-checkpoint", "--arch", "hgrn-bit", "--shards", "0", "-o", "x"], ("--shards",)),
    (["make-checkpoint", "--arch", "hgrn-bit", "--hidden", "262144", "--vocab", "16777216",
      "-o", "x"], ("memory",)),
    (["inspect", "x", "--device-mem", "-4K"], ("--device-mem",)),
    (["verilog", "ternary-dot", "-o", "."], ("directory",)),
    (["verilog", "ternary-dot", "-o", "/proc/td.v"], ("/proc",)),
    # argparse's own refusals: one line instead of usage plus error
    (["verilog"], ("COMPONENT", "--help")),
    (["no-such-command"], ("invalid choice",)),
    (["make-checkpoint"], ("-o/--output",)),
    (["make-checkpoint", "-o", "out"], ("--arch", "--preset")),
    (["sim", "ternary-dot", "--vectors", "many"], ("--vectors", "many")),
    (["verilog", "ternary-dot", "--no-such-option"], ("--no-such-option",)),
])
def test_bad_command_line_is_one_line(args, words, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc = _main(args)
    cap = capsys.readouterr()
    assert rc == 2 and cap.out == "", cap
    assert "Traceback" not in cap.err and "usage:" not in cap.err
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tritium"), cap.err
    assert all(w in lines[0] for w in words), lines[0]
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize("text", [
    "[" * 200_000 + "]" * 200_000,
    '{"kind": "ternary-dot", "lanes": ' + "9" * 5000 + "}",
    b"\xff\xfe{}",
    '{"kind": "ternary-dot", "lanes": true}',
    '{"kind": ["ternary-dot"]}',
    '{"kind": "ternary-dot", "lanes": NaN}',
    "",
])
def test_bad_config_file_is_one_line(text, tmp_path, capsys):
    path = tmp_path / "c.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    rc = _main(["verilog", "ternary-dot", "--config", str(path), "-o", str(tmp_path / "x.v")])
    cap = capsys.readouterr()
    _one_error_line(rc, cap.out, cap.err, "verilog")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json"]


ESTIMATE_CASES = [c for c in CASES if c[0].startswith("json-")] + [
    (f"issue-{name}", "hgrn", set_field(name, value), (name,))
    for name, value in [("architectures", 5), ("expand_ratio", "x"), ("hidden_ratio", "x"),
                        ("rms_norm_eps", "abc"), ("hidden_size", "16"),
                        ("num_hidden_layers", 10 ** 9)]]


@pytest.mark.parametrize("case", ESTIMATE_CASES, ids=[c[0] for c in ESTIMATE_CASES])
def test_estimate_reads_config_json_as_strictly(case, bases, tmp_path, capsys):
    """`estimate --model DIR` reads only config.json: the same checks, one line."""
    _, base, mutate, words = case
    path = _prepare(bases, tmp_path, base, mutate)
    rc = _main(["estimate", "--model", str(path)])
    cap = capsys.readouterr()
    message = _one_error_line(rc, cap.out, cap.err, "estimate")
    assert any(w in message for w in words + ("config.json",)), message


@pytest.mark.parametrize("base,name", [
    ("hgrn", "architectures"), ("hgrn", "model_type"), ("hgrn", "expand_ratio"),
    ("hgrn", "hidden_ratio"), ("hgrn", "rms_norm_eps"), ("hgrn", "num_heads"),
    ("hgrn", "use_short_conv"), ("hgrn", "use_lower_bound"), ("hgrn", "tie_word_embeddings"),
    ("bitnet", "num_key_value_heads"), ("bitnet", "rms_norm_eps"),
    ("packed", "quantization_config"),
])
def test_null_field_means_the_default(base, name, bases, tmp_path, capsys):
    """A null field reads as an absent one (the architecture's default): the strict
    checks refuse wrong values, not the released configs' nulls."""
    def report(path):
        assert cli.main(["inspect", str(path), "--quiet"]) == 0
        # the lines after the checkpoint path and the architecture names
        return capsys.readouterr().out.splitlines()[2:]

    expected = report(bases[base])
    d = tmp_path / "ck"
    shutil.copytree(bases[base], d)
    cfg = _config(d)
    if name == "quantization_config":  # its default is the latent layout: only its parts
        cfg[name] = {k: None for k in cfg[name]} | {"quantization_mode": "offline"}
    else:
        cfg[name] = None
    (d / "config.json").write_text(json.dumps(cfg))
    assert report(d) == expected
