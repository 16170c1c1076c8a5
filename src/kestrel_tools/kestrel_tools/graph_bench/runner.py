"""Start a node process, feed it pre-serialized frames at a fixed rate, time its outputs.

Two rclpy nodes live in this process: the feeder publishes from the calling thread, and the
monitor receives outputs on an executor thread of its own as raw CDR bytes, reading only the
stamp, so that timing is not skewed by deserializing large images in Python.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType

import psutil
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.serialization import serialize_message

from kestrel_tools.graph import NodeProcess, confine_this_process, reliable_qos
from kestrel_tools.graph_bench.accounting import TrialResult, summarize_trial
from kestrel_tools.graph_bench.cdr import read_stamp_ns, with_stamp
from kestrel_tools.graph_bench.params import default_params_file, effective_params, node_ros_args
from kestrel_tools.graph_bench.rate_search import RateSearchConfig, RateSearchResult, find_peak_rate
from kestrel_tools.graph_bench.resources import ResourceSampler, ResourceSummary
from kestrel_tools.graph_bench.targets import NodeTarget, target

OUTPUT_QUEUE_DEPTH = 100  # deep enough that the monitor never loses an answer
WARM_UP_PERIOD_S = 0.5
GRAPH_POLL_S = 0.05
MIN_TRIAL_FRAMES = 5  # a trial sends at least this many frames, however low its rate
BARRIER_RESEND_S = 5.0  # a barrier frame is sent again after this long (or 3 frame latencies)
SINGLE_FRAME_SAMPLES = 3  # frames timed one at a time on the idle node (median)
MIN_GRACE_S = 1.0  # answers are on time until this long after the last send (or 2 latencies)
LOG_TAIL_CHARS = 2000


@dataclass(frozen=True)
class GraphBenchConfig:
    """What to measure and how.

    Attributes:
        node: a key of :data:`~kestrel_tools.graph_bench.targets.TARGETS`.
        params_file: the node's params file; None uses ``config/<node>.param.yaml``.
        overrides: ``name:=value`` parameters for the node.
        width, height: input image size.
        rate_hz, duration_s: the fixed-rate latency run.
        peak: the peak-rate search, or None to skip it.
        trial_duration_s: length of each peak-search trial.
        qos_depth: history depth of the node's (reliable) subscriptions and of the feeder.
        domain_id: ROS domain of the node and of this process.
        startup_timeout_s: at most this long for the node to subscribe, to answer a first
            frame, and to answer the barrier frame that ends each trial.
    """

    node: str = "stereo_depth"
    params_file: Path | None = None
    overrides: tuple[str, ...] = ()
    width: int = 640
    height: int = 480
    rate_hz: float = 10.0
    duration_s: float = 10.0
    peak: RateSearchConfig | None = field(default_factory=RateSearchConfig)
    trial_duration_s: float = 4.0
    qos_depth: int = 5
    domain_id: int = 0
    startup_timeout_s: float = 120.0

    def __post_init__(self) -> None:
        target(self.node)
        if self.width < 16 or self.height < 16:
            raise ValueError(f"the input size must be at least 16x16, got {self.width}x{self.height}")
        if self.rate_hz <= 0 or self.duration_s <= 0 or self.trial_duration_s <= 0:
            raise ValueError("rate, duration and trial duration must be positive")
        if not 1 <= self.qos_depth <= 100:
            raise ValueError(f"qos depth must be in [1, 100], got {self.qos_depth}")
        if self.startup_timeout_s <= 0:
            raise ValueError("the start-up timeout must be positive")

    @property
    def resolved_params_file(self) -> Path | None:
        return self.params_file if self.params_file is not None else default_params_file(self.node)


@dataclass(frozen=True)
class MeasuredTrial:
    """A trial's latency and drop figures with the node's resource use while it was fed."""

    trial: TrialResult
    resources: ResourceSummary


@dataclass(frozen=True)
class GraphBenchResult:
    """Everything one ``kestrel bench-graph`` run measured."""

    config: GraphBenchConfig
    params: dict[str, object]
    command: list[str]
    outputs: list[str]
    fixed_rate: MeasuredTrial
    peak: RateSearchResult | None
    peak_trials: list[MeasuredTrial]
    idle_rss_mb: float
    single_frame_ms: float
    grace_s: float


class _Monitor:
    """Arrival times of outputs per topic, keyed by stamp; thread-safe."""

    def __init__(self, topics: list[str]) -> None:
        self.topics = topics
        self._arrivals: dict[str, dict[int, int]] = defaultdict(dict)
        self._changed = threading.Condition()

    def callback(self, topic: str) -> Callable[[bytes], None]:
        def on_message(data: bytes) -> None:
            now = time.time_ns()
            stamp = read_stamp_ns(data)
            with self._changed:
                self._arrivals[topic].setdefault(stamp, now)
                self._changed.notify_all()
        return on_message

    def clear(self) -> None:
        with self._changed:
            self._arrivals.clear()

    def snapshot(self) -> dict[str, dict[int, int]]:
        with self._changed:
            return {topic: dict(self._arrivals[topic]) for topic in self.topics}

    def wait(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``condition()`` (checked at each arrival); False after ``timeout``."""
        with self._changed:
            return self._changed.wait_for(condition, timeout)

    def has_any(self, stamps: set[int]) -> bool:
        """Whether some stamp is answered on every topic (call with the lock held)."""
        return any(all(stamp in self._arrivals[topic] for topic in self.topics)
                   for stamp in stamps)

    def has_all(self, stamps: set[int]) -> bool:
        """Whether every topic has answered every stamp (call with the lock held)."""
        return all(stamps <= self._arrivals[topic].keys() for topic in self.topics)


class GraphBench:
    """A node process and the feeder and monitor that measure it; a context manager."""

    def __init__(self, config: GraphBenchConfig) -> None:
        self.config = config
        self.target: NodeTarget = target(config.node)
        params_file = config.resolved_params_file
        self.params = effective_params(params_file, config.overrides)
        self.outputs = self.target.outputs(self.params)
        self._frames = self._serialized_frames()
        self._process = NodeProcess(self.target.executable,
                                    node_ros_args(params_file, config.overrides, config.qos_depth),
                                    domain_id=config.domain_id)
        self._monitor = _Monitor(list(self.outputs))
        self._context: Context | None = None
        self._executor: SingleThreadedExecutor | None = None
        self._spinner: threading.Thread | None = None
        self._nodes: list = []
        self._publishers: dict[str, object] = {}
        self._last_stamp = 0
        self._next_frame = 0
        self._resend_s = BARRIER_RESEND_S
        self.grace_s = MIN_GRACE_S

    def _serialized_frames(self) -> list[list[tuple[str, bytes]]]:
        frames = self.target.frames(self.config.width, self.config.height)
        if not frames:
            raise RuntimeError(f"no input frames for {self.config.node}")
        return [[(topic, serialize_message(msg)) for topic, msg in frame] for frame in frames]

    @property
    def command(self) -> list[str]:
        return list(self._process.command)

    # ----------------------------------------------------------------- set-up
    def __enter__(self) -> GraphBench:
        confine_this_process(self.config.domain_id)
        self._process.__enter__()
        try:
            self._start_ros()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def _start_ros(self) -> None:
        self._context = Context()
        rclpy.init(args=[], context=self._context)
        feeder = rclpy.create_node("kestrel_bench_feeder", context=self._context)
        monitor = rclpy.create_node("kestrel_bench_monitor", context=self._context)
        self._nodes = [feeder, monitor]
        qos = reliable_qos(depth=self.config.qos_depth)
        self._publishers = {topic: feeder.create_publisher(kind, topic, qos)
                            for topic, kind in self.target.inputs.items()}
        for topic, kind in self.outputs.items():
            monitor.create_subscription(kind, topic, self._monitor.callback(topic),
                                        reliable_qos(depth=OUTPUT_QUEUE_DEPTH), raw=True)
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(monitor)
        self._spinner = threading.Thread(target=self._executor.spin, name="kestrel-bench-monitor",
                                         daemon=True)
        self._spinner.start()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown()
            self._spinner.join()
            self._executor = None
        for node in self._nodes:
            node.destroy_node()
        self._nodes = []
        if self._context is not None:
            rclpy.try_shutdown(context=self._context)
            self._context = None
        self._process.stop()

    def _check_alive(self) -> None:
        if not self._process.alive():
            raise RuntimeError(f"{self.config.node} exited: {self._process.log()[-LOG_TAIL_CHARS:]}")

    # ----------------------------------------------------------------- feeding
    def _send_next(self) -> int:
        """Publish the next frame, stamped with the send time; its stamp (ns)."""
        stamp = max(time.time_ns(), self._last_stamp + 1)
        self._last_stamp = stamp
        frame = self._frames[self._next_frame % len(self._frames)]
        self._next_frame += 1
        for topic, data in frame:
            self._publishers[topic].publish(with_stamp(data, stamp))
        return stamp

    def warm_up(self) -> None:
        """Wait for the node to subscribe, then feed it slowly until every output answered."""
        deadline = time.monotonic() + self.config.startup_timeout_s
        while not all(p.get_subscription_count() > 0 for p in self._publishers.values()):
            self._check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.config.node} did not subscribe to its inputs within "
                                   f"{self.config.startup_timeout_s:.0f} s")
            time.sleep(GRAPH_POLL_S)  # DDS discovery raises no event in rclpy; poll it
        sent: set[int] = set()
        while not self._monitor.wait(lambda: self._monitor.has_any(sent), WARM_UP_PERIOD_S):
            self._check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.config.node} did not answer within "
                                   f"{self.config.startup_timeout_s:.0f} s")
            sent.add(self._send_next())
        self.settle()

    def settle(self) -> None:
        """Send a barrier frame and wait for its answer on every output.

        The node answers frames in stamp order, so once the barrier is answered every frame
        sent before it has been answered or dropped for good, and the node is idle. The barrier
        is sent again (newer) if its answer does not come: a node dropping it under load
        keeps the newest frame, never an older one.
        """
        deadline = time.monotonic() + self.config.startup_timeout_s
        barriers: set[int] = set()
        while not self._monitor.wait(lambda: self._monitor.has_any(barriers), 0 if not barriers
                                     else self._resend_s):
            self._check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.config.node} did not answer a frame within "
                                   f"{self.config.startup_timeout_s:.0f} s")
            barriers.add(self._send_next())

    def single_frame_ms(self) -> float:
        """Median latency (ms) of ``SINGLE_FRAME_SAMPLES`` frames sent one at a time to the
        idle node, each until its last output arrived.

        Barrier frames (:meth:`settle`) are re-sent after three times this, at least
        ``BARRIER_RESEND_S``; answers to a trial are on time until twice this (at least
        ``MIN_GRACE_S``) after its last frame was sent.
        """
        latencies = []
        for _ in range(SINGLE_FRAME_SAMPLES):
            self._monitor.clear()
            stamp = self._send_next()
            if not self._monitor.wait(lambda: self._monitor.has_all({stamp}),
                                      self.config.startup_timeout_s):
                self._check_alive()
                raise RuntimeError(f"{self.config.node} did not answer a frame within "
                                   f"{self.config.startup_timeout_s:.0f} s")
            arrivals = self._monitor.snapshot().values()
            latencies.append((max(at[stamp] for at in arrivals) - stamp) / 1e6)
        latency_ms = statistics.median(latencies)
        self._resend_s = max(BARRIER_RESEND_S, 3.0 * latency_ms / 1e3)
        self.grace_s = max(MIN_GRACE_S, 2.0 * latency_ms / 1e3)
        return latency_ms

    def trial(self, rate_hz: float, duration_s: float) -> MeasuredTrial:
        """Send ``rate_hz * duration_s`` frames (at least ``MIN_TRIAL_FRAMES``) at ``rate_hz``,
        then a barrier frame (:meth:`settle`) in the next slot; the figures of the frames."""
        self._check_alive()
        count = max(MIN_TRIAL_FRAMES, round(rate_hz * duration_s))
        self._monitor.clear()
        sampler = ResourceSampler(self._process.process.pid)
        sent: list[int] = []
        sampler.start()
        start = time.monotonic()
        for index in range(count):
            delay = start + index / rate_hz - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # pacing the stream, not waiting for a result
            sent.append(self._send_next())
        resources = sampler.stop()
        delay = start + count / rate_hz - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # the barrier keeps to the rate too
        self.settle()
        deadline = sent[-1] + int(self.grace_s * 1e9)
        return MeasuredTrial(summarize_trial(rate_hz, sent, self._monitor.snapshot(), deadline),
                             resources)

    def rss_mb(self) -> float:
        """Resident memory of the node process now, MiB."""
        return psutil.Process(self._process.process.pid).memory_info().rss / (1024 * 1024)


def search_start(config: RateSearchConfig, fixed: TrialResult, duration_s: float) -> RateSearchConfig:
    """Where the peak search starts: at the rate the node answered in the fixed-rate run when
    that run missed frames (the node's throughput, a close guess), else at ``start_hz``."""
    if fixed.miss_fraction == 0 or not fixed.topics:
        return config
    answered_hz = min(t.received - t.late for t in fixed.topics) / duration_s
    start = min(max(answered_hz, config.min_hz), config.max_hz)
    return replace(config, start_hz=start)


def run_graph_bench(config: GraphBenchConfig,
                    progress: Callable[[str], None] = lambda text: None) -> GraphBenchResult:
    """Start the node, warm it up, time one frame, run the fixed-rate trial and (optionally)
    the peak search."""
    with GraphBench(config) as bench:
        progress(f"started {' '.join(bench.command)}")
        bench.warm_up()
        idle_rss = bench.rss_mb()
        single_ms = bench.single_frame_ms()
        progress(f"warm; one frame alone (median of {SINGLE_FRAME_SAMPLES}): {single_ms:.0f} ms; "
                 f"{config.rate_hz:g} Hz for {config.duration_s:g} s")
        fixed = bench.trial(config.rate_hz, config.duration_s)
        progress(f"  dropped {fixed.trial.drop_fraction:.1%}, dropped or late "
                 f"{fixed.trial.miss_fraction:.1%}")
        peak, peak_trials = None, []
        if config.peak is not None:
            def drop_at(rate: float) -> float:
                measured = bench.trial(rate, config.trial_duration_s)
                peak_trials.append(measured)
                progress(f"  peak search: {rate:.2f} Hz -> dropped or late "
                         f"{measured.trial.miss_fraction:.1%}")
                return measured.trial.miss_fraction
            peak = find_peak_rate(drop_at, search_start(config.peak, fixed.trial, config.duration_s))
        return GraphBenchResult(config, bench.params, bench.command, list(bench.outputs),
                                fixed, peak, peak_trials, idle_rss, single_ms, bench.grace_s)
