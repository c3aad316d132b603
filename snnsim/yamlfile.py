"""Reading a YAML file that may be hostile: refused before it is worked on, never a hang or a traceback.

The loader is PyYAML's safe loader (no Python objects are ever constructed) with four more refusals:

- **No anchors or aliases.** An alias makes a document a graph: nested aliases expand exponentially ("billion
  laughs": eight lines of ten aliases each stand for 10^8 values), and a node that contains itself recurses forever. Bounding the
  expansion would still let a file mean something different from what it shows; snnsim's files have their own
  way to share settings (``neuron_defaults`` in a network, presets for architectures), so aliases are refused
  outright with the line where one appears.
- **Bounded size and nesting** (``SNNSIM_MAX_FILE_BYTES``, ``SNNSIM_MAX_DEPTH``; see ``snnsim.limits``), checked
  while composing so that the nesting limit is hit before Python's recursion limit.
- **Mapping keys are strings, and unique.** A number or list as key cannot name a field, and a repeated key would
  silently drop one of the two values.
- **UTF-8 only**, with the byte offset of the first invalid byte.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import yaml

from .limits import limit, over


class _Refused(Exception):
    pass


class _Loader(yaml.SafeLoader):
    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0
        self._max_depth = limit("depth")

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise _Refused(_at(self.peek_event().start_mark, "an alias (*name) is not allowed; write the value out "
                                                             "(anchors and aliases are refused, see snnsim.yamlfile)"))
        event = self.peek_event()
        if getattr(event, "anchor", None):
            raise _Refused(_at(event.start_mark, f"an anchor (&{event.anchor}) is not allowed; write the values out "
                                                 "(anchors and aliases are refused, see snnsim.yamlfile)"))
        self._depth += 1
        if self._depth > self._max_depth:
            raise _Refused(_at(event.start_mark, f"nested too deeply: {over('depth', self._depth)}"))
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise _Refused(_at(key_node.start_mark, f"mapping keys must be text, got {key!r} "
                                                        "(quote it if it is meant as a name)"))
            if key in seen:
                raise _Refused(_at(key_node.start_mark, f"key '{key}' appears twice in the same mapping"))
            seen.add(key)
        return super().construct_mapping(node, deep)


def _at(mark, msg: str) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}: {msg}" if mark else msg


def read_yaml(path: str | Path, error: Callable[[str], Exception], what: str = "file"):
    """The document in ``path``; any problem raises ``error(message)`` with a one-line message."""
    path = Path(path)
    try:
        size = path.stat().st_size
        too_big = over("file_bytes", size)
        if too_big:
            raise error(f"{what} too large: {too_big}")
        data = path.read_bytes()
    except OSError as e:
        raise error(f"cannot read {what}: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{what} is not UTF-8 text (invalid byte 0x{data[e.start]:02x} at byte offset {e.start}); "
                    "save it as UTF-8") from None
    return parse_yaml(text, error)


def parse_yaml(text: str, error: Callable[[str], Exception]):
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    except _Refused as e:
        raise error(f"refused YAML: {e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise error(f"not valid YAML: {_at(mark, problem)}") from None
    except (RecursionError, ValueError, OverflowError, TypeError) as e:   # e.g. a timestamp out of range
        raise error(f"not valid YAML: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    finally:
        loader.dispose()


class FieldReader:
    """Reads the fields of one mapping of a YAML file, naming the field's YAML path in every error, and records
    the keys it was asked for so that ``done()`` can refuse the others. ``error``: the file kind's error class,
    called as ``error(yaml_path, message, source)``."""

    error: Callable[[str, str, str | None], Exception]

    def __init__(self, raw: dict, path: str, source: str | None):
        self.raw, self.path, self.source, self.used = raw, path, source, set()

    def where(self, key) -> str:
        return f"{self.path}.{key}" if self.path else key

    def err(self, key, msg: str) -> Exception:
        return self.error(self.where(key), msg, self.source)

    def get(self, key, default=None, required=False):
        self.used.add(key)
        if key not in self.raw:
            if required:
                raise self.err(key, "missing (required)")
            return default
        return self.raw[key]

    def done(self):
        """Refuses the first field nobody asked for, listing the allowed ones."""
        unknown = sorted(set(self.raw) - self.used, key=str)
        if unknown:
            allowed = ", ".join(sorted(self.used)) or "(none)"
            raise self.err(str(unknown[0]), f"unknown field; allowed here: {allowed}")
