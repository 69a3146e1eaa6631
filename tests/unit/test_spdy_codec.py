"""SPDY/3 building blocks: the header dictionary, header blocks, frame layout."""

import struct
import zlib

from adapters.streaming import spdy

# The SPDY/3 dictionary id (Chromium's kV3DictionaryId); checked once against Go's dictionary bytes.
ADLER32 = 0xE3C6A7C2


def test_dictionary_is_the_spdy3_one() -> None:
    # Length and Adler-32 of the dictionary in the SPDY/3 draft (and in Go's spdy package); zlib puts the
    # Adler-32 in every stream primed with it, so a different dictionary cannot interoperate.
    assert len(spdy.DICTIONARY) == 1423
    assert zlib.adler32(spdy.DICTIONARY) == ADLER32
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert spdy.DICTIONARY.endswith(b"utf-,*,enq=0.")


def test_header_blocks_round_trip_across_frames_with_shared_context() -> None:
    sender, receiver = spdy.HeaderCodec(), spdy.HeaderCodec()
    first = sender.encode([("streamType", "stdout"), ("X-Multi", "a\x00b")])
    second = sender.encode([("streamType", "stdout")])
    assert len(second) < len(first)  # the shared compression context remembers the first block
    assert receiver.decode(first) == {"streamtype": ["stdout"], "x-multi": ["a", "b"]}
    assert receiver.decode(second) == {"streamtype": ["stdout"]}


def test_frame_headers() -> None:
    control = spdy.control_frame(spdy.PING, 0, struct.pack(">I", 1))
    assert control == bytes([0x80, 0x03, 0x00, 0x06, 0, 0, 0, 4, 0, 0, 0, 1])
    data = spdy.data_frame(5, spdy.FLAG_FIN, b"abc")
    assert data == bytes([0, 0, 0, 5, 1, 0, 0, 3]) + b"abc"
