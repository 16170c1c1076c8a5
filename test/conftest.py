"""Every test stays on this host: loopback-only DDS discovery in a domain of its own run."""

import os
from pathlib import Path

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(os.getpid() % 90 + 5))
os.environ.setdefault(
    "FASTDDS_DEFAULT_PROFILES_FILE",
    str(Path(__file__).resolve().parents[1] / "config" / "fastdds_shm.xml"),
)
