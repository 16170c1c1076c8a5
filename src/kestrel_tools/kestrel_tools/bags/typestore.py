"""Message types for a bag: the ROS 2 Kilted type store plus the definitions the bag carries.

A rosbag2 file normally embeds the definition of every message type it holds (the
``message_definitions`` table of sqlite3 storage, the schema records of MCAP). Those
definitions describe the bytes exactly as they were recorded, so they win over Kilted's
where the two differ (a bag recorded on an older distribution, or a custom package). Types
that the bag does not define come from Kilted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from rosbags.interfaces import MessageDefinition, MessageDefinitionFormat
from rosbags.typesys import (Stores, TypesysError, get_types_from_idl, get_types_from_msg,
                              get_typestore)
from rosbags.typesys.store import Typestore

IDL_SEPARATOR = "=" * 80 + "\n"


@dataclass
class BagTypes:
    """A type store and what went wrong while filling it.

    Attributes:
        store: deserializes and serializes CDR for every known type.
        problems: message type -> why the bag's own definition of it could not be used.
    """

    store: Typestore
    problems: dict[str, str] = field(default_factory=dict)

    def knows(self, msgtype: str) -> bool:
        return msgtype in self.store.fielddefs

    def unknown_reason(self, msgtype: str) -> str:
        """One sentence on why ``msgtype`` cannot be deserialized."""
        reason = (f"message type {msgtype} is neither in the ROS 2 Kilted type store nor "
                  "defined in the bag")
        if problem := self.problems.get(msgtype):
            reason += f" (its embedded definition is unusable: {problem})"
        return reason


def _parse_one(msgtype: str, definition: MessageDefinition) -> dict:
    """Typesdict of one embedded definition, including the types it depends on."""
    if definition.format == MessageDefinitionFormat.MSG:
        return get_types_from_msg(definition.data, msgtype)
    types: dict = {}
    # rosbag2 stores an IDL definition as sections: a line of 80 '=', 'IDL: pkg/msg/Type', text.
    sections = definition.data.split(IDL_SEPARATOR)
    for section in sections:
        header, _, text = section.partition("\n")
        if header.startswith("IDL: "):
            types.update(get_types_from_idl(text))
        elif section.strip():
            types.update(get_types_from_idl(section))
    return types


def embedded_types(definitions: Iterable[tuple[str, MessageDefinition]]) -> tuple[dict, dict]:
    """Parse the definitions a bag carries.

    Args:
        definitions: (message type, definition) pairs; empty definitions are ignored.

    Returns:
        (typesdict for ``Typestore.register``, {message type: parse error}).
    """
    types: dict = {}
    problems: dict[str, str] = {}
    for msgtype, definition in definitions:
        if definition.format == MessageDefinitionFormat.NONE or not definition.data.strip():
            continue
        try:
            types.update(_parse_one(msgtype, definition))
        except (TypesysError, ValueError, KeyError, IndexError) as err:
            problems[msgtype] = " ".join(str(err).split()) or type(err).__name__
    return types, problems


def build_types(definitions: Iterable[tuple[str, MessageDefinition]] = ()) -> BagTypes:
    """Kilted's types, overridden and extended by the bag's own definitions."""
    store = get_typestore(Stores.ROS2_KILTED)
    types, problems = embedded_types(definitions)
    if not types:
        return BagTypes(store, problems)
    try:
        store.register(types)
    except TypesysError:
        # A bag type differs from Kilted's: the bag's definition describes its bytes.
        merged = {**store.fielddefs, **types}
        store = get_typestore(Stores.EMPTY)
        store.register(merged)
    return BagTypes(store, problems)
