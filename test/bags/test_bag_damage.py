"""Damaged bags are read up to the damage, then BagError says where reading stopped.

What rosbags does alone (checked here too): it refuses a truncated MCAP file at open ("File end
magic is invalid.", it needs the footer), and refuses a .db3 with a damaged table page at open
("database disk image is malformed", it counts every row first); neither yields a message.
"""

import sqlite3

import numpy as np
import pytest
from bag_data import MCAP_BAG, SQLITE_BAG, raw_messages, read_until_damage, writable_copy
from rosbags.rosbag2 import Reader, ReaderError

from kestrel_tools.bags import BagError, BagWriter, open_bag


@pytest.fixture(scope="module")
def intact_mcap():
    return raw_messages(MCAP_BAG)


@pytest.fixture(scope="module")
def intact_sqlite():
    return raw_messages(SQLITE_BAG)


@pytest.mark.parametrize("fraction", [0.5, 0.9])
def test_truncated_mcap_yields_every_message_before_the_cut(tmp_path, intact_mcap, fraction):
    data = MCAP_BAG.read_bytes()
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(data[:int(len(data) * fraction)])
    with pytest.raises(ReaderError, match="File end magic is invalid"):
        Reader(cut).open()

    bag = open_bag(cut)
    assert bag.damaged and bag.damage is not None
    read, error = read_until_damage(cut)
    assert error is not None and str(cut) in str(error) and "truncated" in str(error)
    assert error.offset is not None and 0 < error.offset < cut.stat().st_size
    # In this recording file order is time order, so what was read is a prefix of the bag.
    assert read == intact_mcap[:len(read)]
    if fraction == 0.5:  # the cut falls inside the one zstd chunk: its decodable part is read
        assert 0.3 * len(intact_mcap) < len(read) < len(intact_mcap)
        assert f"damaged at byte {error.offset}: chunk record declares" in str(error)
    else:  # the cut falls in the index after the data: every message is there
        assert len(read) == len(intact_mcap)
    counts = {topic: sum(1 for t, _, _ in read if t == topic) for topic in bag.topics}
    assert counts == {topic: bag.message_count(topic) for topic in bag.topics}


def _page_aligned_middle(path):
    page_size = sqlite3.connect(path).execute("PRAGMA page_size").fetchone()[0]
    return page_size * (path.stat().st_size // page_size // 2)


@pytest.mark.parametrize("damage", ["overwrite", "truncate"])
def test_damaged_db3_yields_the_rows_before_the_damaged_page(tmp_path, intact_sqlite, damage):
    bag = writable_copy(SQLITE_BAG, tmp_path / "bag")
    db3 = bag / "tf_example.db3"
    offset = _page_aligned_middle(db3)
    data = bytearray(db3.read_bytes())
    if damage == "overwrite":
        data[offset:offset + 16] = b"\xff" * 16  # the B-tree page header of a messages page
    else:
        del data[offset:]
    db3.write_bytes(bytes(data))
    with pytest.raises(ReaderError, match="database disk image is malformed"):
        Reader(bag).open()

    read, error = read_until_damage(bag)
    assert error is not None and error.offset == offset
    assert f"{db3}: damaged at byte {offset}" in str(error)
    assert ("truncated" in str(error)) == (damage == "truncate")
    assert 0 < len(read) < len(intact_sqlite)
    assert read == intact_sqlite[:len(read)]


def test_overwritten_payload_is_caught_by_the_cdr_decoder_and_names_the_topic(tmp_path,
                                                                             intact_sqlite):
    db3 = writable_copy(SQLITE_BAG / "tf_example.db3", tmp_path / "tf.db3")
    data = bytearray(db3.read_bytes())
    victim = intact_sqlite[300][2]  # a /tf message: overwrite its frame_id length with 0xff
    start = data.find(victim)
    assert start > 0 and data.find(victim, start + 1) < 0
    data[start + 20:start + 24] = b"\xff" * 4
    db3.write_bytes(bytes(data))

    read = []
    with open_bag(db3) as bag, pytest.raises(BagError) as caught:
        for message in bag.messages():
            read.append(message.timestamp_ns)
    assert caught.value.topic == "/tf"
    assert f"topic /tf: message at t={intact_sqlite[300][1]} ns is not a valid" in str(caught.value)
    assert read == [t for _, t, _ in intact_sqlite[:300]]


def test_a_chunk_damaged_inside_a_sound_mcap_stops_reading_at_that_chunk(tmp_path):
    path = tmp_path / "bag"
    with BagWriter(path, "mcap") as bag:
        types = bag.types.store.types
        bag.add_topic("/image", "sensor_msgs/msg/Image")
        for index in range(6):  # 400 kB each: rosbags closes a chunk past 1 MiB
            pixels = np.full(400_000, 10 + index, dtype=np.uint8)
            bag.write("/image", 1_000 + index, types["sensor_msgs/msg/Image"](
                header=types["std_msgs/msg/Header"](
                    stamp=types["builtin_interfaces/msg/Time"](sec=index, nanosec=0),
                    frame_id="cam"),
                height=1, width=400_000, encoding="mono8", is_bigendian=0, step=400_000,
                data=pixels))
    mcap = path / "bag.mcap"
    with Reader(mcap) as reader:
        chunk_offsets = [chunk.chunk_start_offset for chunk in reader.storage.chunks]
    assert len(chunk_offsets) == 2
    data = bytearray(mcap.read_bytes())
    pixels = data.find(np.full(1000, 15, dtype=np.uint8).tobytes())  # image 5, second chunk
    assert pixels > chunk_offsets[1]
    # Its message record: opcode, length, channel id, sequence, log time 1005, publish time.
    times = data.find((1005).to_bytes(8, "little") * 2, chunk_offsets[1])
    record = times - 1 - 8 - 2 - 4
    assert data[record] == 0x05 and record < pixels
    data[record + 1:record + 9] = (2**40).to_bytes(8, "little")  # an impossible length
    mcap.write_bytes(bytes(data))

    with open_bag(path) as bag:
        assert not bag.damaged  # the summary is sound: rosbags opens it
        read = []
        with pytest.raises(BagError) as caught:
            for message in bag.messages():
                read.append(int(message.msg.data[0]))
        assert bag.damaged
    assert read == [10, 11, 12]  # the first chunk
    assert caught.value.offset == chunk_offsets[1]
    assert f"{mcap}: damaged at byte {chunk_offsets[1]}" in str(caught.value)
