"""The one exception the bag layer raises."""

from __future__ import annotations

from pathlib import Path


class BagError(RuntimeError):
    """A bag that cannot be opened, read or written as asked.

    The message always names the file; it names the topic and the byte offset when they are
    known, and they are also kept as attributes for callers that want to act on them.

    Attributes:
        path: the bag, or the storage file inside it, that failed.
        topic: the topic concerned, or None.
        offset: byte offset of the damage in ``path``, or None when unknown.
    """

    def __init__(self, message: str, path: Path | str, *, topic: str | None = None,
                 offset: int | None = None) -> None:
        super().__init__(message)
        self.path = Path(path)
        self.topic = topic
        self.offset = offset
