"""Tools of the MCP servers this sandbox's host bridges, one module per server.

    from mcp_tools.github import search_issues
    search_issues(query="label:bug", limit=5)
    import mcp_tools; mcp_tools.servers()        # the bridged servers' names

They are host tools named ``<server>.<tool>`` (see ``sandbox_tools``, whose errors and limits
apply); ``mcp_tools.<server>`` is made when first imported, from the host's list.
"""

import importlib.abc
import importlib.machinery
import sys
import types

import sandbox_tools

__path__: list[str] = []  # a package: its submodules come from the finder below


def servers() -> list[str]:
    """The names of the bridged servers (``mcp_tools.<name>``)."""
    return sorted(
        {tool["name"].split(".")[0] for tool in sandbox_tools.list() if "." in tool["name"]}
    )


class _Server(types.ModuleType):
    def __getattr__(self, name: str) -> sandbox_tools.Tool:
        if name.startswith("__"):
            raise AttributeError(name)
        return sandbox_tools._lookup(self.__name__[len("mcp_tools.") :] + ".", name, self.__name__)

    def __dir__(self) -> list[str]:
        return sorted(sandbox_tools._local(self.__name__[len("mcp_tools.") :] + "."))


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        parts = fullname.split(".")
        if len(parts) != 2 or parts[0] != "mcp_tools":
            return None
        if parts[1] not in servers():
            return None  # the import fails as usual: No module named 'mcp_tools.x'
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = _Server(spec.name, f"Tools of the bridged MCP server {spec.name[10:]!r}.")
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: the module's tools are looked up on the host when used."""


if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
    sys.meta_path.append(_Finder())
