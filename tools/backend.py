"""Backends as plugins: declared capabilities, a pydantic options model, and one registry style for every tool.

A backend is a class with
- `id`: stable name recorded as provenance;
- `Options`: a pydantic model of its constructor options (defaults and descriptions: `synthloop backends`
  lists them); a run config's block `{backend: NAME, ...options}` is validated against it at start-up;
- `capabilities`: what it can do (`Capabilities`), read by the agent instead of probing attributes;
- `requires`: the import names it needs, so `synthloop backends` can say whether it is installed here;
- `from_options(options)`: how the registry builds it (default: `cls(**options)`).
`Backend` gives those defaults. Heavy imports (torch, diffusers, ray) happen inside methods, never at module
import, so listing or validating backends stays fast.

Each tool owns one `Registry` (`tools/<tool>/registry.py`): built-in names map to "module:Class" strings
imported on first use; other packages add backends through Python entry points (group
`synthloop.<tool>s`, e.g. `synthloop.renderers`), and tests through `Registry.register`.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import importlib.util
import inspect
import threading
import typing
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, create_model, model_serializer, model_validator

T = TypeVar("T")


class BackendError(ValueError):
    """A backend name, option or combination is unusable; the message is one line naming it."""


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do; the agent reads these instead of probing attributes.

    text_conditioned: a renderer that uses the per-image text prompt (`RenderRequest.prompt`).
    exact_labels: a renderer whose instance map is exact by construction (compositing), or an annotator whose
        labels come from such a map; generated images with model labels are not exact.
    provides_masks: a renderer that returns `RenderResult.instance_map` (visible pixels per layout object); an
        annotator whose instances carry segmentation masks (a box-only detector annotator does not).
    needs_instance_map: an annotator that reads `RenderResult.instance_map` (it cannot label bare pixels).
    uses_references: a renderer that takes reference / style images.
    batched: prefers whole batches from one thread (GPU pipelines); per-image backends are spread over threads.
    device: where it computes: cpu | cuda | auto (cuda when available).
    stateful: a judge whose verdict depends on samples kept before (judged in index order, told of each kept
        sample through `observe`).
    edits_images: a renderer that applies plain-language edit instructions to an image (`edit_image`); the loop
        repairs `edit` verdicts that ask for an image change with it.
    """

    text_conditioned: bool = False
    exact_labels: bool = False
    provides_masks: bool = False
    needs_instance_map: bool = False
    uses_references: bool = False
    batched: bool = False
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    stateful: bool = False
    edits_images: bool = False

    def as_dict(self) -> dict[str, Any]:
        """Only the capabilities that differ from the defaults, for listings."""
        default = Capabilities()
        return {k: v for k, v in asdict(self).items() if getattr(default, k) != v}


class NoOptions(BaseModel):
    """A backend without options."""

    model_config = ConfigDict(extra="forbid")


class Backend:
    """Defaults for every backend class (id, options, capabilities, requirements, construction)."""

    id: ClassVar[str] = ""
    Options: ClassVar[type[BaseModel]] = NoOptions
    capabilities: ClassVar[Capabilities] = Capabilities()
    requires: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_options(cls, options: BaseModel) -> Any:
        """Build the backend from its validated options (keyword arguments of the constructor by default)."""
        return cls(**{name: getattr(options, name) for name in type(options).model_fields})


@functools.cache
def options_model(cls: type) -> type[BaseModel]:
    """The backend's options model: its own `Options`, else one derived from its constructor's keyword
    parameters and their defaults (so a plugin without an `Options` class is still validated)."""
    declared = getattr(cls, "Options", NoOptions)
    if declared is not NoOptions or cls.__init__ is object.__init__:
        return declared
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # unresolvable annotations: accept any value for those parameters
        hints = {}
    fields: dict[str, Any] = {}
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        default = ... if param.default is param.empty else param.default
        fields[name] = (hints.get(name, Any), default)
    return create_model(f"{cls.__name__}Options", __config__=ConfigDict(extra="forbid",
                                                                       arbitrary_types_allowed=True), **fields)


class BackendBlock(BaseModel):
    """A backend choice in a run config: a bare name (`renderer: compositor`) or a block
    (`renderer: {backend: compositor, min_contrast: 60}`). Serialises back to the same shape."""

    model_config = ConfigDict(frozen=True)

    backend: str
    options: dict[str, Any] = {}

    @model_validator(mode="before")
    @classmethod
    def _flatten(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"backend": value, "options": {}}
        if isinstance(value, BackendBlock):
            return {"backend": value.backend, "options": dict(value.options)}
        if isinstance(value, dict):
            if "backend" not in value:
                raise ValueError("a backend block needs a 'backend' key naming the backend, "
                                 "e.g. {backend: compositor}")
            if set(value) == {"backend", "options"} and isinstance(value["options"], dict):
                return value  # built in code: BackendBlock(backend=..., options={...})
            options = {k: v for k, v in value.items() if k != "backend"}
            return {"backend": value["backend"], "options": options}
        raise ValueError(f"a backend is a name or a block {{backend: NAME, ...options}}, not {type(value).__name__}")

    @model_serializer
    def _serialise(self) -> str | dict[str, Any]:
        return self.backend if not self.options else {"backend": self.backend, **self.options}


@dataclass(frozen=True)
class BackendInfo:
    """One row of `synthloop backends`."""

    tool: str
    name: str
    target: str
    description: str
    capabilities: dict[str, Any]
    options: dict[str, dict[str, Any]]
    requires: tuple[str, ...]
    installed: bool
    missing: tuple[str, ...]
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _target_name(target: type | str) -> str:
    return target if isinstance(target, str) else f"{target.__module__}:{target.__qualname__}"


def _options_table(options_model: type[BaseModel]) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    for name, field in options_model.model_fields.items():
        default = None if field.is_required() else field.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            default = default.model_dump(mode="json")
        table[name] = {"default": default, "required": field.is_required(),
                       "type": getattr(field.annotation, "__name__", str(field.annotation)).replace("typing.", ""),
                       "description": field.description or ""}
    return table


def _first_line(text: str | None) -> str:
    return (text or "").strip().split("\n", 1)[0]


class Registry(Generic[T]):
    """Backends of one tool by name: built-ins ("module:Class" strings), registered classes, entry points.

    Names resolve lazily (a module is imported when its backend is used or listed), so registering costs
    nothing at start-up.
    """

    def __init__(self, tool: str, group: str, builtins: dict[str, str]) -> None:
        self.tool = tool
        self.group = group
        self._targets: dict[str, type | str] = dict(builtins)
        self._entry_points_loaded = False
        self._lock = threading.Lock()

    def register(self, name: str, target: type | str, *, replace: bool = False) -> None:
        """Add a backend class (or a "module:Class" string) under `name`."""
        self._load_entry_points()
        with self._lock:
            if name in self._targets and not replace and self._targets[name] != target:
                raise BackendError(f"{self.tool} backend '{name}' is already registered "
                                   f"({_target_name(self._targets[name])})")
            self._targets[name] = target

    def unregister(self, name: str) -> None:
        """Remove a backend (tests that registered a toy one)."""
        with self._lock:
            self._targets.pop(name, None)

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        found = importlib.metadata.entry_points(group=self.group)
        with self._lock:
            for ep in found:
                self._targets.setdefault(ep.name, ep.value)
            self._entry_points_loaded = True

    def names(self) -> list[str]:
        """Every backend name of this tool, built-ins first."""
        self._load_entry_points()
        return list(self._targets)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def resolve(self, name: str) -> type:
        """The backend class called `name` (its module imported now)."""
        if name not in self:
            raise BackendError(f"unknown {self.tool} '{name}' (available: {', '.join(self.names())})")
        target = self._targets[name]
        if not isinstance(target, str):
            return target
        module_name, _, attr = target.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise BackendError(f"{self.tool} backend '{name}' cannot be loaded from {target}: {exc}") from exc
        return cls

    def options(self, name: str, values: dict[str, Any] | None = None) -> BaseModel:
        """Validate `values` against the backend's Options; one-line error naming backend and option."""
        model = options_model(self.resolve(name))
        values = dict(values or {})
        unknown = sorted(set(values) - set(model.model_fields))
        if unknown:
            known = ", ".join(model.model_fields) or "none"
            raise BackendError(f"{self.tool} '{name}' has no option '{unknown[0]}' (its options: {known})")
        try:
            return model.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "options"
            raise BackendError(f"{self.tool} '{name}' option '{where}': {first['msg']}") from exc

    def check(self, block: BackendBlock | str) -> BackendBlock:
        """Validate a config block now (name and options), so a mistake fails at start-up, not mid-run."""
        block = BackendBlock.model_validate(block)
        self.options(block.backend, block.options)
        return block

    def capabilities(self, name: str) -> Capabilities:
        """Declared capabilities of a backend (defaults when it declares none)."""
        return getattr(self.resolve(name), "capabilities", Capabilities())

    def build(self, block: BackendBlock | str, **overrides: Any) -> T:
        """Construct the backend of `block` with its validated options (plus `overrides`, for tests)."""
        block = BackendBlock.model_validate(block)
        cls = self.resolve(block.backend)
        options = self.options(block.backend, {**block.options, **overrides})
        missing = missing_modules(getattr(cls, "requires", ()))
        if missing:
            raise BackendError(f"{self.tool} backend '{block.backend}' needs {', '.join(missing)}, not installed "
                               f"here (pip install 'synthloop[models]')")
        builder = getattr(cls, "from_options", None)
        return builder(options) if builder is not None else cls(**options.model_dump())

    def describe(self) -> list[BackendInfo]:
        """One `BackendInfo` per backend (import failures are reported, not raised)."""
        rows = []
        for name in self.names():
            target = _target_name(self._targets[name])
            try:
                cls = self.resolve(name)
            except BackendError as exc:
                rows.append(BackendInfo(self.tool, name, target, "", {}, {}, (), False, (), str(exc)))
                continue
            requires = tuple(getattr(cls, "requires", ()))
            missing = missing_modules(requires)
            rows.append(BackendInfo(
                tool=self.tool, name=name, target=target, description=_first_line(cls.__doc__),
                capabilities=getattr(cls, "capabilities", Capabilities()).as_dict(),
                options=_options_table(options_model(cls)), requires=requires,
                installed=not missing, missing=missing,
            ))
        return rows


def missing_modules(names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The import names among `names` that cannot be found on this machine (nothing is imported)."""
    missing = []
    for name in names:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return tuple(missing)
