"""Mapping evaluation on real trajectories: a synthetic world, noisy scans, drifting odometry."""
