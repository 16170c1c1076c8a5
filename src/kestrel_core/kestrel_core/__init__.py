"""Kestrel core: perception algorithms in torch and numpy, free of ROS.

Each capability lives in its own subpackage (``stereo``, later ``flow``,
``fusion``, ...); shared camera geometry lives in ``geometry``.
"""

__version__ = "0.1.0"
