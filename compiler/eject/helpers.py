"""The code the ejected file copies in: nncompile.compiler.nn's modules and functions that its classes
call (torch lacks them under the same terms), and `Group`, the namespace of a group of layers."""

from __future__ import annotations

import inspect
import re

GROUP = '''class Group(nn.Module):
    """A group of the spec's layers: a namespace for their names (the class that holds it runs them).
    Its members are set as attributes, so type checkers take them as Any."""

    def __getattr__(self, name: str) -> Any:
        return super().__getattr__(name)'''


def copied(body: str) -> str:
    """The source of each helper the classes' source `body` calls, in nncompile.compiler.nn's order."""
    from .. import nn as helpers

    used = [GROUP] if _calls(body, "Group") else []
    for name, value in vars(helpers).items():
        if getattr(value, "__module__", None) == helpers.__name__ and _calls(body, name) and name != "initialize":
            used.append(_typed_buffers(inspect.getsource(value).rstrip()))
    return "\n\n\n".join(used)


def _calls(body: str, name: str) -> bool:
    return re.search(rf"(?<![\w.]){name}\(", body) is not None


def _typed_buffers(source: str) -> str:
    """A class that registers buffers by name declares them (`name: Tensor`), as type checkers cannot
    see a registered buffer as an attribute."""
    buffers = [name for name in re.findall(r'self\.register_buffer\("(\w+)"', source) if not re.search(rf"^    {name}: ", source, re.M)]
    if not buffers:
        return source
    docstring = re.match(r'(class .*?:\n    """.*?"""\n)', source, re.S)
    head = docstring.group(1) if docstring else source.partition("\n")[0] + "\n"
    return head + "".join(f"\n    {name}: Tensor\n" for name in buffers) + source[len(head) :]
