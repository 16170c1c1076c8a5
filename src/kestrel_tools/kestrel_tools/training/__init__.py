"""Shared pieces of ``kestrel train <task>``: where the unlabeled frames come from."""

from kestrel_tools.training.frames import (FrameSource, add_source_arguments, iter_frames,
                                           load_frames, sources_from_args)

__all__ = ["FrameSource", "add_source_arguments", "iter_frames", "load_frames",
           "sources_from_args"]
