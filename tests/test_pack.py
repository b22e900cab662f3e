"""t2/t3 packing, TMV tiling and the Hugging Face BitNet packed layout."""

import numpy as np
import pytest

from tritium.errors import ShapeError
from tritium.golden.ternary import (CODE_INVALID, CODE_NEG, CODE_POS, CODE_ZERO, pack_t2,
                                    pack_t2_simple, pack_t3, pack_t3_simple, packed_length,
                                    unpack_t2, unpack_t3)
from tritium.engines.tmv.golden import tile_tmv
from tritium.golden.quantize import pack_hf_bitnet, unpack_hf_bitnet

SHAPES = [(1,), (4,), (5,), (7,), (3, 1), (3, 8), (3, 9), (2, 10), (5, 13), (2, 3, 11),
          (0, 6), (17, 40)]


def test_t2_known_bytes():
    # first code in the least significant bits: 2 | 1<<2 | 0<<4 | 2<<6
    assert pack_t2([2, 1, 0, 2]).tolist() == [0b10_00_01_10]
    # a partial group is padded with the zero-weight code (0b01)
    assert pack_t2([0, 2]).tolist() == [0b01_01_10_00]
    assert pack_t2([[1, 1, 1, 1, 0], [2, 2, 2, 2, 2]]).tolist() == [[0x55, 0x54], [0xAA, 0x56]]


def test_t3_known_bytes():
    assert pack_t3([2, 2, 2, 2, 2]).tolist() == [242]
    assert pack_t3([1, 0, 2, 0, 1]).tolist() == [1 + 2 * 9 + 81]
    # padding with CODE_ZERO (1): 0 + 3*(1 + 3 + 9 + 27) = 120
    assert pack_t3([0]).tolist() == [120]
    # a group straddling nothing: six codes -> two bytes per row
    assert pack_t3([[2, 0, 0, 0, 0, 1]]).tolist() == [[2, 1 + 3 + 9 + 27 + 81]]


def _pack_by_definition(codes, per, place):
    """Byte-by-byte from the format definition, with plain Python ints."""
    rows = np.asarray(codes).reshape(-1, np.asarray(codes).shape[-1]).tolist()
    out = []
    for row in rows:
        row = row + [CODE_ZERO] * (-len(row) % per)
        out.append([sum(int(row[i + k]) * place(k) for k in range(per))
                    for i in range(0, len(row), per)])
    return out


@pytest.mark.parametrize("shape", SHAPES)
def test_pack_matches_definition_and_round_trips(shape):
    rng = np.random.default_rng(sum(shape) + len(shape))
    codes = rng.integers(0, 3, shape).astype(np.uint8)
    n = shape[-1]
    for pack, simple, unpack, per, place in (
            (pack_t2, pack_t2_simple, unpack_t2, 4, lambda k: 4 ** k),
            (pack_t3, pack_t3_simple, unpack_t3, 5, lambda k: 3 ** k)):
        packed = pack(codes)
        assert packed.dtype == np.uint8
        assert packed.shape == shape[:-1] + (-(-n // per),)
        if codes.size:
            expect = _pack_by_definition(codes, per, place)
            assert packed.reshape(-1, packed.shape[-1]).tolist() == expect
        assert np.array_equal(simple(codes), packed)
        assert np.array_equal(unpack(packed, n), codes)


def test_t2_keeps_the_invalid_code_and_t3_refuses_it():
    codes = np.array([CODE_INVALID, CODE_NEG, CODE_POS, CODE_INVALID], np.uint8)
    assert np.array_equal(unpack_t2(pack_t2(codes), 4), codes)
    with pytest.raises(ValueError):
        pack_t3(codes)
    with pytest.raises(ValueError):
        pack_t2([4])
    with pytest.raises(ValueError):
        pack_t2(np.array([-1, 0]))


def test_unpack_t3_rejects_bytes_no_group_produces():
    with pytest.raises(ValueError, match="242"):
        unpack_t3(np.array([243], np.uint8), 5)
    with pytest.raises(ValueError):
        unpack_t2(np.zeros(2, np.uint8), 9)


def test_large_layer_round_trip_does_not_touch_input():
    rng = np.random.default_rng(7)
    codes = rng.integers(0, 3, (64, 5632)).astype(np.uint8)
    before = codes.copy()
    for pack, unpack in ((pack_t2, unpack_t2), (pack_t3, unpack_t3)):
        assert np.array_equal(unpack(pack(codes), 5632), codes)
    assert np.array_equal(codes, before)
    # non-contiguous input (a column slice) packs like its contiguous copy
    view = codes[:, 3:3 + 103]
    assert np.array_equal(pack_t3(view), pack_t3(np.ascontiguousarray(view)))
    assert np.array_equal(pack_t2(view), pack_t2(np.ascontiguousarray(view)))


def test_packed_length():
    assert packed_length(10, "t2") == 3 and packed_length(10, "t3") == 2
    with pytest.raises(ValueError):
        packed_length(10, "t4")


def test_tile_tmv_hand_example():
    # 3x5 matrix, pe=2 rows, simd=2 columns per word
    m = np.array([[0, 1, 2, 0, 1],
                  [2, 2, 0, 0, 1],
                  [1, 0, 0, 2, 2]], np.uint8)
    z = CODE_ZERO
    words = tile_tmv(m, simd=2, pe=2)
    assert words.tolist() == [
        [0, 1, 2, 2],      # rows 0-1, cols 0-1: pe0 (0,1) then pe1 (2,2)
        [2, 0, 0, 0],      # rows 0-1, cols 2-3
        [1, z, 1, z],      # rows 0-1, col 4 + padding
        [1, 0, z, z],      # row 2 + padding row, cols 0-1
        [0, 2, z, z],
        [2, z, z, z],
    ]


@pytest.mark.parametrize("rows,cols,simd,pe", [(8, 8, 4, 2), (7, 10, 3, 4), (1, 1, 8, 8),
                                               (33, 17, 16, 1)])
def test_tile_tmv_matches_the_engine_read_order(rows, cols, simd, pe):
    rng = np.random.default_rng(rows * cols)
    m = rng.integers(0, 3, (rows, cols)).astype(np.uint8)
    words = tile_tmv(m, simd, pe)
    cb = -(-cols // simd)
    assert words.shape == (-(-rows // pe) * cb, pe * simd)
    for w, word in enumerate(words):
        rb, c0 = divmod(w, cb)
        for lane, code in enumerate(word):
            p, s = divmod(lane, simd)
            r, c = rb * pe + p, c0 * simd + s
            assert code == (m[r, c] if r < rows and c < cols else CODE_ZERO)


def test_tile_tmv_rejects_bad_arguments():
    with pytest.raises(ShapeError):
        tile_tmv(np.zeros(4, np.uint8), 2, 2)
    with pytest.raises(ShapeError):
        tile_tmv(np.zeros((2, 2), np.uint8), 0, 2)


def test_hf_bitnet_unpack_docstring_example():
    # the example in transformers.integrations.bitnet.unpack_weights' documentation
    packed = np.array([[0b10100001, 0b00011000],
                       [0b10010000, 0b00001010]], np.uint8)
    values = unpack_hf_bitnet(packed).astype(int) - 1
    assert values.tolist() == [[0, -1], [-1, 1], [-1, 1], [-1, 1],
                               [1, 0], [0, -1], [1, -1], [1, -1]]
    assert np.array_equal(pack_hf_bitnet(unpack_hf_bitnet(packed)), packed)


def test_hf_bitnet_layout_rows_are_strided_by_a_quarter():
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 3, (12, 5)).astype(np.uint8)
    packed = pack_hf_bitnet(codes)
    assert packed.shape == (3, 5)
    for r in range(3):
        for i in range(4):
            assert np.array_equal((packed[r] >> (2 * i)) & 3, codes[r + 3 * i])
    with pytest.raises(ValueError, match="multiple of 4"):
        pack_hf_bitnet(codes[:10])
