"""Link protocol codec (host side) and the UART PHY in the Amaranth simulator."""

import zlib

from amaranth.sim import Simulator

from tritium.hdl.link import UartRx, UartTx
from tritium import protocol as P


def test_frame_layout_and_crc():
    f = P.encode(7, P.WRITE, b"\x01\x02")
    assert f[0] == P.SOF and f[1] == 7 and f[2] == P.WRITE and f[3:5] == b"\x02\x00"
    assert f[5:7] == b"\x01\x02"
    assert int.from_bytes(f[7:], "little") == zlib.crc32(f[1:7])
    assert len(f) == P.OVERHEAD + 2


def test_decoder_skips_garbage_and_resyncs_after_false_sof():
    frames = [P.encode(k, P.READ, bytes([k]) * k) for k in range(1, 6)]
    # garbage with a false SOF and a plausible header just before a real frame
    stream = b"\x00\x13" + bytes([P.SOF, 9, P.WRITE, 3, 0, 1]) + frames[0] + b"\xa5" + \
        b"".join(frames[1:])
    dec = P.Decoder(max_payload=64)
    got = []
    for k in range(0, len(stream), 3):  # arbitrary chunking
        got += dec.feed(stream[k:k + 3])
    assert [(g.seq, g.payload) for g in got] == [(k, bytes([k]) * k) for k in range(1, 6)]


def test_decoder_drops_corrupted_frames():
    good = P.encode(1, P.STATUS)
    bad = bytearray(P.encode(2, P.WRITE, b"abc"))
    bad[6] ^= 0x10
    dec = P.Decoder()
    assert [f.seq for f in dec.feed(bytes(bad) + good)] == [1]
    assert dec.crc_errors == 1


def test_fields_round_trip():
    values = {"flags": 3, "result_beats": 70000, "weight_crc": 0xDEADBEEF,
              "weight_lines": 5, "last_seq": 255, "have_last": 1}
    raw = P.pack_fields(P.STATUS_FIELDS, values)
    assert len(raw) == P.fields_size(P.STATUS_FIELDS)
    assert P.unpack_fields(P.STATUS_FIELDS, raw) == values


DIVISOR = 217  # 25 MHz / 115200 baud


def test_uart_loopback_at_a_real_baud_divisor():
    from amaranth import Module

    tx, rx = UartTx(DIVISOR), UartRx(DIVISOR)
    m = Module()
    m.submodules.tx, m.submodules.rx = tx, rx
    m.d.comb += rx.rx.eq(tx.tx)
    data = [0x00, 0xFF, 0xA5, 0x5A, 0x01, 0x80]
    got = []

    async def bench(ctx):
        ctx.set(rx.o.ready, 1)
        k = 0
        for _ in range(DIVISOR * 10 * (len(data) + 2)):
            if k < len(data):
                ctx.set(tx.i.payload, data[k])
                ctx.set(tx.i.valid, 1)
            else:
                ctx.set(tx.i.valid, 0)
            took = ctx.get(tx.i.valid) and ctx.get(tx.i.ready)
            if ctx.get(rx.o.valid):
                got.append(ctx.get(rx.o.payload))
            await ctx.tick()
            k += bool(took)

    sim = Simulator(m)
    sim.add_clock(1 / 25e6)
    sim.add_testbench(bench)
    sim.run()
    assert got == data
    assert len(got) == len(data)


def test_uart_rx_counts_a_framing_error():
    rx = UartRx(8)

    async def bench(ctx):
        ctx.set(rx.o.ready, 1)
        # start bit, 8 data bits of 0, then a low "stop" bit: a framing error
        for bit in [0] * 10 + [1] * 4:
            ctx.set(rx.rx, bit)
            await ctx.tick().repeat(8)
        assert ctx.get(rx.framing_errors) == 1
        assert not ctx.get(rx.o.valid)

    sim = Simulator(rx)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
