"""Drive real Kestrel node processes over DDS: start them, feed them, wait for answers.

Shared by the node tests, ``kestrel demo`` and the benchmarks. Everything stays on this
host (``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``) in a domain of the caller's choosing,
with Kestrel's shared-memory Fast DDS profile.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Iterable

import rclpy
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from kestrel_tools.paths import config_dir



def find_executable(name: str) -> str:
    """A console script beside the running interpreter (the venv), else on ``PATH``."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"executable {name!r} is neither beside {sys.executable} nor on PATH")
    return found


def local_ros_env(domain_id: int, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a ROS process confined to this host and ``domain_id``."""
    env = dict(os.environ if base is None else base)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["ROS_DOMAIN_ID"] = str(domain_id)
    env.setdefault("PYTHONUNBUFFERED", "1")
    profile = config_dir() / "fastdds_shm.xml"
    if profile.is_file():
        env.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(profile))
    return env


def confine_this_process(domain_id: int) -> None:
    """Apply :func:`local_ros_env` to the current process (before ``rclpy.init``)."""
    os.environ.update(local_ros_env(domain_id))


class NodeProcess:
    """A node executable running as its own process; a context manager.

    ``NodeProcess("stereo_depth", ["-p", "max_disparity:=64"], domain_id=12)`` starts
    ``stereo_depth --ros-args -p max_disparity:=64``. Its output goes to a log file,
    readable with :meth:`log`, so failures can be reported with the node's own words.
    """

    def __init__(self, executable: str, ros_args: Iterable[str] = (), domain_id: int = 0,
                 extra_env: dict[str, str] | None = None) -> None:
        self.command = [find_executable(executable), "--ros-args", *ros_args]
        self._env = {**local_ros_env(domain_id), **(extra_env or {})}
        self._log = tempfile.NamedTemporaryFile(prefix=f"{Path(executable).name}-", suffix=".log", delete=False)
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "NodeProcess":
        self.process = subprocess.Popen(
            self.command, env=self._env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGINT, then SIGKILL if it lingers; returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode

    def log(self) -> str:
        self._log.flush()
        return Path(self._log.name).read_text(errors="replace")


def reliable_qos(depth: int = 10, latched: bool = False) -> QoSProfile:
    return QoSProfile(
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


class GraphProbe:
    """An in-process rclpy node that publishes inputs and collects outputs.

    Received messages are kept per topic in arrival order (``received[topic]``).
    :meth:`wait_for` spins until a condition holds or a timeout passes; nothing sleeps
    for a fixed time.
    """

    def __init__(self, name: str = "kestrel_probe", domain_id: int | None = None) -> None:
        if domain_id is not None:
            confine_this_process(domain_id)
        self._owns_context = not rclpy.ok()
        if self._owns_context:
            rclpy.init()
        self.node: Node = rclpy.create_node(name)
        self.received: dict[str, list[Any]] = defaultdict(list)
        self._publishers: dict[str, Any] = {}

    def close(self) -> None:
        self.node.destroy_node()
        if self._owns_context:
            rclpy.try_shutdown()

    def __enter__(self) -> "GraphProbe":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def publisher(self, msg_type: type, topic: str, qos: QoSProfile | None = None) -> Any:
        if topic not in self._publishers:
            self._publishers[topic] = self.node.create_publisher(msg_type, topic, qos or reliable_qos())
        return self._publishers[topic]

    def subscribe(self, msg_type: type, topic: str, qos: QoSProfile | None = None) -> None:
        self.node.create_subscription(
            msg_type, topic, lambda msg, t=topic: self.received[t].append(msg), qos or reliable_qos()
        )

    def spin_for(self, seconds: float) -> None:
        """Process callbacks for ``seconds`` (used to pace a stream, not to wait for results)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            rclpy.spin_once(self.node, timeout_sec=max(0.0, min(0.05, end - time.monotonic())))

    def wait_for(self, condition: Callable[[], bool], timeout: float,
                 while_waiting: Callable[[], None] | None = None, period: float = 0.2) -> bool:
        """Spin until ``condition()`` is true; call ``while_waiting`` every ``period`` s.

        Returns False on timeout instead of raising, so callers can report context.
        """
        deadline = time.monotonic() + timeout
        next_call = time.monotonic()
        while time.monotonic() < deadline:
            if condition():
                return True
            if while_waiting is not None and time.monotonic() >= next_call:
                while_waiting()
                next_call = time.monotonic() + period
            rclpy.spin_once(self.node, timeout_sec=0.02)
        return condition()

    def wait_for_subscribers(self, topics: Iterable[str], timeout: float) -> bool:
        """Wait until every topic published here has at least one matched subscriber."""
        pubs = [self._publishers[t] for t in topics]
        return self.wait_for(lambda: all(p.get_subscription_count() > 0 for p in pubs), timeout)


class DiagnosticsProbe:
    """Reads one node's latest status from ``/diagnostics`` through a :class:`GraphProbe`.

    ``task`` is a substring of the status name (``"stereo depth"``, ``"optical flow"``).
    """

    def __init__(self, probe: GraphProbe, task: str) -> None:
        from diagnostic_msgs.msg import DiagnosticArray

        self.probe = probe
        self.task = task
        probe.subscribe(DiagnosticArray, "/diagnostics")

    def latest(self) -> Any:
        """The newest DiagnosticStatus of the node, or None before the first one."""
        for array in reversed(self.probe.received.get("/diagnostics", [])):
            for status in array.status:
                if self.task in status.name:
                    return status
        return None

    def value(self, key: str, default: str = "") -> str:
        status = self.latest()
        if status is None:
            return default
        return next((kv.value for kv in status.values if kv.key == key), default)

    def dropped(self, cause: str) -> int:
        """How many frames the node has dropped for ``cause`` so far."""
        return int(self.value(f"dropped.{cause}", "0"))
