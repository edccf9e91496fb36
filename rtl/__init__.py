"""Amaranth components of ecomac; importing the package registers every design."""
import importlib
import pkgutil

_INFRA = {"params", "registry", "export"}

for _m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _m.name not in _INFRA and not _m.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_m.name}")
