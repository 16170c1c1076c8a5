"""Fixed transforms from a bag's ``/tf_static``: compose the chain between two frames."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from kestrel_tools.bags import BagReader
from kestrel_tools.sample import topics


def transform_matrix(transform: object) -> np.ndarray:
    """(4, 4) matrix of a ``geometry_msgs/Transform``."""
    t, q = transform.translation, transform.rotation
    matrix = np.eye(4)
    matrix[:3, :3] = Rotation.from_quat([q.x, q.y, q.z, q.w]).as_matrix()
    matrix[:3, 3] = (t.x, t.y, t.z)
    return matrix


class StaticTransforms:
    """The tree of a bag's static transforms: child frame -> (parent frame, parent_T_child)."""

    def __init__(self, bag: BagReader, topic: str = topics.TF_STATIC) -> None:
        self.parents: dict[str, tuple[str, np.ndarray]] = {}
        for message in bag.messages(topic):
            for stamped in message.msg.transforms:
                self.parents[stamped.child_frame_id] = (stamped.header.frame_id,
                                                        transform_matrix(stamped.transform))
        self.source = f"{bag.path} {topic}"

    def _to_root(self, frame: str) -> tuple[list[str], np.ndarray]:
        """Frames from ``frame`` up to its root, and root_T_frame."""
        chain, pose = [frame], np.eye(4)
        while chain[-1] in self.parents:
            parent, parent_t_child = self.parents[chain[-1]]
            if parent in chain:
                raise ValueError(f"{self.source}: the transforms loop at frame {parent!r}")
            pose = parent_t_child @ pose
            chain.append(parent)
        return chain, pose

    def lookup(self, target: str, source: str) -> np.ndarray:
        """(4, 4) ``target_T_source``: maps coordinates in ``source`` into ``target``."""
        target_chain, root_t_target = self._to_root(target)
        source_chain, root_t_source = self._to_root(source)
        if target_chain[-1] != source_chain[-1]:
            raise ValueError(f"{self.source}: no transform chain between {target!r} and "
                             f"{source!r} (roots {target_chain[-1]!r} and {source_chain[-1]!r})")
        return np.linalg.inv(root_t_target) @ root_t_source
