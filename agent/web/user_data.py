"""The user's own data in the web UI: reference images, a reference COCO set and cut-outs, and how each run uses
them.

Workspace layout (next to the run folders):

    references/<sha>.png|jpg        reference images uploaded one by one (POST /api/references)
    reference_snapshots/<sha>/      an immutable copy of references/ as a run started (named by its content)
    reference_data/<sha>/meta.json  an uploaded reference COCO set (.zip): what it holds
    reference_data/<sha>/files/…    its COCO instances JSON and images, as extracted
    assets/<sha>/meta.json          an uploaded cut-out set (.zip, one folder per class of PNGs with alpha)
    assets/<sha>/files/<class>/…    the cut-outs
    user_data.json                  which reference set and which cut-out set are active ({"reference", "assets"})

A stored set is named by the SHA-256 of its zip and never changes; clearing a set only deactivates it, so a
stopped run that named it still resumes. Each new run gets the server's config (`synthloop ui --config
--assets --reference-coco --reference-images`) with the active sets put in through `with_user_data`: an
uploaded reference set replaces the command line's (layouts from its statistics, its objects cut out), an
uploaded cut-out set replaces `--assets`.

Reference images reach the renderer as a per-run snapshot: when a run starts, the images in references/ are
copied into reference_snapshots/<sha of their names and contents>/ (shared by runs with the same images, never
written again) and the run config names that folder. A later upload or a clear therefore never changes a run
that resumes: same config, same files, same bytes. The snapshot sits beside the runs rather than in the run
folder because the runner starts a new run only in an empty folder. A renderer that declares `uses_references`
gets `references: <snapshot>`; otherwise one with a `backgrounds_dir` option (copy_paste) uses them as
background photographs; otherwise the run's conversation says that the renderer does not use them. Uploaded
images replace a folder the config gives for that option (as the sets replace `--assets` / `--reference-*`);
clearing them brings the config's folder back.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthloop.agent.errors import UserInputError
from synthloop.agent.web.safety import UnsafeRequest
from synthloop.agent.web.zips import DEFAULT_ZIP_LIMITS, IMAGE_SUFFIXES, ZipLimits, extract_zip
from synthloop.tools.io import atomic_write_json

REFERENCES_DIR = "references"
SNAPSHOTS_DIR = "reference_snapshots"
REFERENCE_DATA_DIR = "reference_data"
ASSETS_DIR = "assets"
ACTIVE_FILE = "user_data.json"
KINDS = {"reference": REFERENCE_DATA_DIR, "assets": ASSETS_DIR}
SET_ID = re.compile(r"^[0-9a-f]{16}$")


@dataclass(frozen=True)
class RunNote:
    """A line for a new run's conversation about the user's data; `warning` when something is not used."""

    text: str
    warning: bool = False


def upload_name(name: str | None) -> str:
    """A file name the browser sent, made safe to show: its last component, printable, at most 100 characters."""
    text = re.sub(r"[\x00-\x1f\x7f]", "", (name or "").replace("\\", "/").rsplit("/", 1)[-1]).strip()
    return text[:100] or "upload.zip"


def _relative(message: str, root: Path) -> str:
    """An error message with the upload's temporary folder taken out of its paths (one line)."""
    text = message.replace(f"{root}{os.sep}", "").replace(str(root), "the zip")
    return " ".join(text.split())


def _image_files(folder: Path) -> list[Path]:
    if folder.is_symlink() or not folder.is_dir():  # uploads never make links: one would lead out of the workspace
        return []
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.is_symlink() and p.suffix.lower() in IMAGE_SUFFIXES)


def _images_folder(json_path: Path, root: Path) -> Path:
    """The folder the COCO file's `file_name`s are relative to: of the JSON's folder, its images/ subfolder, the
    zip's top, its images/ folder and then every other folder (COCO's own annotations/ + train2017/), the first
    that holds the most of the first 20 names (the JSON's folder when it cannot be read)."""
    preferred = [json_path.parent, json_path.parent / "images", root, root / "images"]
    candidates = [f for f in dict.fromkeys([*preferred, *sorted(p for p in root.rglob("*") if p.is_dir())])
                  if f.is_dir()]
    try:
        names = [str(entry.get("file_name", "")) for entry in json.loads(json_path.read_text("utf-8"))["images"]
                 if isinstance(entry, dict)][:20]
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return json_path.parent
    counts = [sum(1 for n in names if n and (folder / n).is_file()) for folder in candidates]
    return candidates[counts.index(max(counts))] if max(counts) > 0 else json_path.parent


def _renderer_option_for_references(renderer: Any) -> tuple[str, str] | None:
    """(option, role) through which the renderer of a config block takes reference images, or None."""
    from synthloop.tools.backend import options_model
    from synthloop.tools.render.registry import RENDERERS

    if RENDERERS.capabilities(renderer.backend).uses_references:
        return "references", "reference / style images"
    if "backgrounds_dir" in options_model(RENDERERS.resolve(renderer.backend)).model_fields:
        return "backgrounds_dir", "background photographs"
    return None


class UserData:
    """The user's uploaded data in one workspace and the run config it gives (see the module docstring)."""

    def __init__(self, workspace: Path, base_config: Any, limits: ZipLimits = DEFAULT_ZIP_LIMITS) -> None:
        self.workspace = Path(workspace).resolve()
        self.base_config = base_config
        self.limits = limits
        self.lock = threading.RLock()

    # ------------------------------------------------------------------------------------------ active sets

    def _active_ids(self) -> dict[str, str | None]:
        try:
            value = json.loads((self.workspace / ACTIVE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            value = {}
        value = value if isinstance(value, dict) else {}
        return {kind: value.get(kind) if isinstance(value.get(kind), str) and SET_ID.fullmatch(value[kind])
                else None for kind in KINDS}

    def _set_active(self, kind: str, set_id: str | None) -> None:
        with self.lock:
            active = self._active_ids()
            active[kind] = set_id
            atomic_write_json(self.workspace / ACTIVE_FILE, active)

    def _meta(self, kind: str, set_id: str) -> dict[str, Any] | None:
        folder = self.workspace / KINDS[kind] / set_id
        try:
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return meta if isinstance(meta, dict) else None

    def active(self, kind: str) -> dict[str, Any] | None:
        """The meta of the active set of `kind` (reference | assets), None when none is active."""
        set_id = self._active_ids()[kind]
        return self._meta(kind, set_id) if set_id else None

    def clear(self, kind: str) -> None:
        """Deactivate the set of `kind`; its files stay (a stopped run naming them can still resume)."""
        self._set_active(kind, None)

    def reference_images(self) -> list[Path]:
        """The uploaded reference images (references/), sorted by name."""
        return _image_files(self.workspace / REFERENCES_DIR)

    def clear_reference_images(self) -> int:
        """Delete the uploaded reference images; runs keep their snapshots. Returns how many were deleted."""
        with self.lock:
            files = self.reference_images()
            for path in files:
                path.unlink(missing_ok=True)
        return len(files)

    # ------------------------------------------------------------------------------------------- uploads

    def _store(self, kind: str, data: bytes, name: str, suffixes: frozenset[str],
               describe: Any) -> dict[str, Any]:
        """Extract a zip into a temporary folder, check and describe it (`describe(files_dir) → meta`), then move
        it to <kind dir>/<sha>/ and make it active; on any error nothing is stored."""
        set_id = hashlib.sha256(data).hexdigest()[:16]
        parent = self.workspace / KINDS[kind]
        final = parent / set_id
        if (final / "meta.json").is_file():  # this very zip was checked before
            self._set_active(kind, set_id)
            return self._meta(kind, set_id) or {}
        parent.mkdir(parents=True, exist_ok=True)
        temporary = parent / f".upload-{secrets.token_hex(8)}"
        temporary.mkdir()
        try:
            files = temporary / "files"
            files.mkdir()
            extract_zip(data, files, suffixes, self.limits)
            try:
                details = describe(files)
            except (UserInputError, ValueError) as exc:
                raise UnsafeRequest(_relative(str(exc), files), 422) from exc
            except RecursionError as exc:
                raise UnsafeRequest("a JSON file in the zip is nested too deeply", 422) from exc
            meta = {"id": set_id, "kind": kind, "name": name, "uploaded": time.strftime("%Y-%m-%d %H:%M:%S"),
                    **details}
            atomic_write_json(temporary / "meta.json", meta, indent=2)
            try:
                temporary.rename(final)
            except OSError:  # the same zip arrived twice at once: the other upload stored it
                if not (final / "meta.json").is_file():
                    raise
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
        self._set_active(kind, set_id)
        return self._meta(kind, set_id) or {}

    def store_reference(self, data: bytes, name: str) -> dict[str, Any]:
        """Store a reference COCO set (a .zip of one COCO instances JSON and its images) and make it active."""

        def describe(files: Path) -> dict[str, Any]:
            from synthloop.agent.backends import with_user_data
            from synthloop.tools.reference import load_reference

            found = sorted(files.rglob("*.json"))
            if len(found) != 1:
                listed = ", ".join(p.relative_to(files).as_posix() for p in found[:3])
                raise ValueError(f"the zip must hold exactly one COCO instances JSON file, not {len(found)}"
                                 + (f" ({listed})" if listed else ""))
            images = _images_folder(found[0], files)
            reference = load_reference(found[0], images)
            with_user_data(self._without_reference(), reference_coco=found[0], reference_images=images)
            return {"coco": found[0].relative_to(files).as_posix(),
                    "images": images.relative_to(files).as_posix() if images != files else "",
                    "classes": list(reference.classes), "n_images": len(reference.images),
                    "n_objects": sum(len(image.objects) for image in reference.images)}

        return self._store("reference", data, name, frozenset({".json", *IMAGE_SUFFIXES}), describe)

    def store_assets(self, data: bytes, name: str) -> dict[str, Any]:
        """Store a cut-out set (a .zip of one folder per class of PNGs with transparency) and make it active."""

        def describe(files: Path) -> dict[str, Any]:
            from synthloop.agent.backends import with_user_data
            from synthloop.tools.assets.sources import scan_user_assets

            root = self._assets_root(files)
            assets = scan_user_assets(root)
            with_user_data(self.base_config, assets=root)
            classes: dict[str, int] = {}
            for asset in assets:
                classes[asset.label] = classes.get(asset.label, 0) + 1
            return {"root": root.relative_to(files).as_posix() if root != files else "", "classes": classes,
                    "n_cutouts": len(assets)}

        return self._store("assets", data, name, frozenset({".png"}), describe)

    @staticmethod
    def _assets_root(files: Path) -> Path:
        """The folder holding the class folders: the zip's top, or its single top folder when every file lies
        at least two folders below it (`assets/cup/1.png`)."""
        entries = [p for p in files.iterdir() if not p.name.startswith(".")]
        if len(entries) == 1 and entries[0].is_dir():
            inner = entries[0]
            if all(len(p.relative_to(inner).parts) >= 2 for p in inner.rglob("*") if p.is_file()):
                return inner
        return files

    # ---------------------------------------------------------------------------------------- run config

    def _without_reference(self) -> Any:
        """The server's config with its layout reset where a reference set would replace the command line's."""
        from synthloop.tools.backend import BackendBlock

        config = self.base_config
        if config.layout.backend == "reference":  # a new reference set replaces the command line's data
            return config.model_copy(update={"layout": BackendBlock(backend="procedural")})
        return config

    def _set_paths(self, kind: str, meta: dict[str, Any]) -> tuple[Path, ...]:
        files = self.workspace / KINDS[kind] / str(meta["id"]) / "files"
        if kind == "reference":
            return files / meta["coco"], files / meta["images"]
        return (files / meta["root"],)

    def _snapshot(self, images: list[Path]) -> Path:
        """The immutable snapshot folder holding copies of `images` (made once per distinct set)."""
        digest = hashlib.sha256()
        for path in images:
            digest.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
        final = self.workspace / SNAPSHOTS_DIR / digest.hexdigest()[:16]
        if final.is_dir():
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        temporary = final.parent / f".copy-{secrets.token_hex(8)}"
        temporary.mkdir()
        try:
            for path in images:
                shutil.copyfile(path, temporary / path.name)
            try:
                temporary.rename(final)
            except OSError:  # made at the same moment for another run: same content
                if not final.is_dir():
                    raise
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
        return final

    def _with_reference_images(self, config: Any, folder: Path | None, count: int) -> tuple[Any, RunNote]:
        """The config with the reference images in its renderer (see the module docstring), and what was done."""
        from synthloop.tools.backend import BackendBlock, BackendError
        from synthloop.tools.render.registry import RENDERERS

        renderer = config.renderer
        what = f"the {count} uploaded reference image{'s' if count != 1 else ''}"
        are = "is" if count == 1 else "are"
        route = _renderer_option_for_references(renderer)
        if route is None:
            return config, RunNote(f"renderer '{renderer.backend}' does not use reference images: {what} {are} not "
                                   "used in this run", warning=True)
        option, role = route
        replaced = renderer.options.get(option)  # uploads replace the config's folder, as sets replace --assets
        target = folder or self.workspace / REFERENCES_DIR
        block = BackendBlock.model_validate({"backend": renderer.backend, **renderer.options, option: str(target)})
        try:
            RENDERERS.check(block)
        except BackendError as exc:
            why = str(exc).replace(" option 'options': ", ": ").replace("Value error, ", "")  # a whole-options check
            return config, RunNote(f"{what} {are} not used: {why}", warning=True)
        where = f"; snapshot {target.relative_to(self.workspace).as_posix()}" if folder else ""
        where += f"; instead of the config's {replaced}" if replaced else ""
        return (config.model_copy(update={"renderer": block}),
                RunNote(f"{what} {'serves' if count == 1 else 'serve'} as {role} (renderer {renderer.backend}, "
                        f"option `{option}`{where})"))

    def run_config(self) -> tuple[Any, list[RunNote]]:
        """The config of a new run: the server's, with the active sets and a snapshot of the reference images;
        and a note per piece of the user's data on how this run uses it. A set that became unusable (its files
        removed) is one UserInputError."""
        from synthloop.agent.backends import with_user_data

        config, notes = self.base_config, []
        with self.lock:
            reference, assets, images = self.active("reference"), self.active("assets"), self.reference_images()
            snapshot = self._snapshot(images) if images else None
            for kind, set_id in self._active_ids().items():
                if set_id and self._meta(kind, set_id) is None:
                    notes.append(RunNote(f"the active {'reference' if kind == 'reference' else 'cut-out'} set "
                                         f"{set_id} is gone from the workspace: not used", warning=True))
        if reference is not None:
            coco, folder = self._set_paths("reference", reference)
            config = with_user_data(self._without_reference(), reference_coco=coco, reference_images=folder)
            layouts = ("from its statistics (layout reference)" if config.layout.backend == "reference"
                       else f"from the configured '{config.layout.backend}' sampler")
            notes.append(RunNote(f"Reference set {reference['name']} ({', '.join(reference['classes'])}): layouts "
                                 f"{layouts}, its objects cut out by the renderer."))
        if assets is not None:
            (root,) = self._set_paths("assets", assets)
            config = with_user_data(config, assets=root)
            counts = ", ".join(f"{name} {n}" for name, n in assets["classes"].items())
            notes.append(RunNote(f"Cut-outs {assets['name']} ({counts}) are pasted first for their classes."))
        if snapshot is not None:
            config, note = self._with_reference_images(config, snapshot, len(images))
            notes.append(note)
        return config, notes

    def status(self) -> dict[str, Any]:
        """What the UI shows: the active sets, the reference images and how the next run uses them, and the
        user data the server was started with."""
        images = self.reference_images()
        use = self._with_reference_images(self.base_config, None, len(images))[1] if images else None
        options = self.base_config.renderer.options
        configured = {key: options[key] for key in ("assets_dir", "reference_coco", "reference_images",
                                                    "backgrounds_dir", "references") if options.get(key)}
        return {
            "reference": self.active("reference"), "assets": self.active("assets"),
            "references": {"count": len(images), "use": use.text if use else "", "warning": bool(use and use.warning)},
            "renderer": self.base_config.renderer.backend, "layout": self.base_config.layout.backend,
            "configured": configured,
        }
