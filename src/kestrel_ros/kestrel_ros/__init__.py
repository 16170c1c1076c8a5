"""Kestrel ROS 2 adapters: message conversions, library stand-ins and thin nodes."""
