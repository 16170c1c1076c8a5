"""Write-then-read round trips through BagWriter and open_bag, in both storages."""

import numpy as np
import pytest

from kestrel_tools.bags import BagError, BagWriter, open_bag

STORAGES = ["sqlite3", "mcap"]
BLIP = "int32 count\nstring label\nfloat64[] values\n"


def image(types, index: int, height: int = 5, width: int = 7):
    """An rgb8 image whose pixel bytes depend on index and position, with a padded row step."""
    step = width * 3 + 3
    pixels = (np.arange(height * step, dtype=np.uint32) * 7 + index * 31) % 256
    stamp = types["builtin_interfaces/msg/Time"](sec=100 + index, nanosec=5_000 * index)
    header = types["std_msgs/msg/Header"](stamp=stamp, frame_id="camera_optical")
    return types["sensor_msgs/msg/Image"](header=header, height=height, width=width,
                                          encoding="rgb8", is_bigendian=0, step=step,
                                          data=pixels.astype(np.uint8))


def transform(types, index: int):
    rotation = np.array([0.1 * index, -0.2, 0.3, 1.0])
    rotation /= np.linalg.norm(rotation)
    return types["geometry_msgs/msg/TransformStamped"](
        header=types["std_msgs/msg/Header"](
            stamp=types["builtin_interfaces/msg/Time"](sec=index, nanosec=999_999_999),
            frame_id="odom"),
        child_frame_id="base_link",
        transform=types["geometry_msgs/msg/Transform"](
            translation=types["geometry_msgs/msg/Vector3"](x=1.5 * index, y=-2.0, z=1e-9),
            rotation=types["geometry_msgs/msg/Quaternion"](*rotation)))


@pytest.mark.parametrize("storage", STORAGES)
def test_images_transforms_and_a_custom_type_come_back_equal(tmp_path, storage):
    path = tmp_path / "bag"
    written = []
    with BagWriter(path, storage) as bag:
        types = bag.types.store.types
        bag.add_topic("/camera/image_raw", "sensor_msgs/msg/Image")
        bag.add_topic("/pose", "geometry_msgs/msg/TransformStamped")
        bag.add_topic("/blip", "kestrel_test/msg/Blip", msgdef=BLIP)
        for index in range(4):
            stamp = 1_700_000_000_000_000_000 + index * 50_000_000
            for topic, msg in (("/camera/image_raw", image(types, index)),
                               ("/pose", transform(types, index)),
                               ("/blip", types["kestrel_test/msg/Blip"](
                                   count=index, label=f"n{index}",
                                   values=np.arange(index, dtype=np.float64) / 3))):
                bag.write(topic, stamp + len(written), msg)
                written.append((topic, stamp + len(written), msg))

    with open_bag(path) as bag:
        assert not bag.damaged
        assert bag.topics == {"/camera/image_raw": "sensor_msgs/msg/Image",
                              "/pose": "geometry_msgs/msg/TransformStamped",
                              "/blip": "kestrel_test/msg/Blip"}
        assert [bag.message_count(t) for t in bag.topics] == [4, 4, 4]
        assert (bag.start_ns, bag.end_ns) == (written[0][1], written[-1][1])
        read = list(bag.messages())
    assert [(m.topic, m.timestamp_ns) for m in read] == [(t, s) for t, s, _ in written]
    for message, (_, _, original) in zip(read, written):
        if message.topic == "/camera/image_raw":
            assert (message.msg.height, message.msg.width, message.msg.step) == (5, 7, 24)
            assert message.msg.encoding == "rgb8" and message.msg.header == original.header
            np.testing.assert_array_equal(message.msg.data, original.data)
        elif message.topic == "/pose":
            assert message.msg == original  # nested dataclasses of plain numbers and strings
        else:
            assert (message.msg.count, message.msg.label) == (original.count, original.label)
            np.testing.assert_array_equal(message.msg.values, original.values)


@pytest.mark.parametrize("storage", STORAGES)
def test_raw_cdr_bytes_are_written_and_read_unchanged(tmp_path, storage):
    path = tmp_path / "bag"
    with BagWriter(path, storage) as bag:
        types = bag.types.store
        bag.add_topic("/pose", "geometry_msgs/msg/TransformStamped")
        payload = bytes(types.serialize_cdr(transform(types.types, 3),
                                            "geometry_msgs/msg/TransformStamped"))
        bag.write("/pose", 42, payload)
    with open_bag(path) as bag:
        (raw,) = bag.messages(raw=True)
        (decoded,) = bag.messages("/pose")
    assert raw.msg == payload and raw.timestamp_ns == 42
    assert decoded.msg == transform(types.types, 3)


def test_writer_refuses_what_it_cannot_write(tmp_path):
    with BagWriter(tmp_path / "bag", "mcap") as bag:
        types = bag.types.store.types
        bag.add_topic("/pose", "geometry_msgs/msg/TransformStamped")
        with pytest.raises(BagError, match="/image was not added"):
            bag.write("/image", 1, image(types, 0))
        with pytest.raises(BagError, match="/pose takes geometry_msgs/msg/TransformStamped, "
                                           "got sensor_msgs/msg/Image"):
            bag.write("/pose", 1, image(types, 0))
        with pytest.raises(BagError, match="topic /x: message type no_pkg/msg/Thing is neither"):
            bag.add_topic("/x", "no_pkg/msg/Thing")
        with pytest.raises(ValueError, match="non-negative integer"):
            bag.write("/pose", -5, transform(types, 0))
    with pytest.raises(BagError, match="exists already"):
        BagWriter(tmp_path / "bag")
    with pytest.raises(ValueError, match="storage must be one of sqlite3, mcap"):
        BagWriter(tmp_path / "other", "rosbag1")
