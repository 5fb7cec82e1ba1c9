"""Saving and loading: weights alone, or a whole model, in one .npz file.

A file holds the weight arrays and a JSON description (format, layers, and for a whole
model its architecture and compile settings). It is read with allow_pickle=False, so
loading a file cannot run code; writes go through a temporary file and a rename, so a
failed write never leaves half a file.
"""

from __future__ import annotations

import json
import os
import secrets
import zipfile
from typing import Any

import numpy as np

from . import layers as layers_module
from . import losses as losses_module
from . import optimizers as optimizers_module
from .layers import Layer, check_weight_value

__all__ = ["check_suffix", "FORMAT", "load_model", "load_weights", "model_from_spec", "write"]


def __dir__() -> list[str]:
    return list(__all__)  # what tab completion offers: the public names, not np, os, ...


FORMAT = "microgradnet-1"


def check_suffix(path: str | os.PathLike, what: str) -> None:
    """Refuse, before anything is written, a file name whose suffix promises a format this
    module does not write (Keras' .keras or .h5 would get an .npz under that name)."""
    suffix = os.path.splitext(os.fspath(path))[1]
    if suffix and suffix.lower() != ".npz":
        keras = " (Keras' own formats are not written)" if suffix.lower() in (
            ".keras", ".h5", ".hdf5") else ""
        raise ValueError(
            f"{what}: cannot write a {suffix!r} file{keras}; the formats it writes: .npz "
            f"(arrays and a JSON description, read by load_model and load_weights), e.g. "
            f"{what}({os.path.splitext(os.fspath(path))[0] + '.npz'!r})"
        )


def write(path: str | os.PathLike, layers: list[Layer], description: dict | None = None) -> None:
    """Write the layers' weights and `description` (JSON data) to `path`, atomically."""
    meta = {"format": FORMAT, **(description or {}), "layers": _layer_index(layers)}
    arrays = {f"layer{i}/{j}": w.data
              for i, layer in enumerate(layers) for j, w in enumerate(layer.weights)}
    _write_npz(path, {"__meta__": np.array(json.dumps(meta)), **arrays})


def _layer_index(layers: list[Layer]) -> list[dict]:
    return [{"name": layer.name, "class_name": type(layer).__name__,
             "weights": len(layer.weights)} for layer in layers]


def load_weights(model: Any, path: str | os.PathLike) -> None:
    """Read weights saved by save_weights (or save); the architecture must match."""
    contents = _read_npz(path)
    meta = _meta(contents, path)
    if not model.built:
        model.build()
    saved_layers = meta["layers"]
    if len(saved_layers) != len(model.layers):
        raise ValueError(
            f"{path}: the file has weights for {len(saved_layers)} layers, the model has "
            f"{len(model.layers)}"
        )
    updates = []
    for i, (layer, saved) in enumerate(zip(model.layers, saved_layers, strict=True)):
        if saved["weights"] != len(layer.weights):
            raise ValueError(
                f"{path}: layer {i} ({layer.name!r}) has {len(layer.weights)} weights, the "
                f"file's layer {saved['name']!r} has {saved['weights']}"
            )
        for j, (name, w) in enumerate(zip(layer.weight_names, layer.weights, strict=True)):
            new = contents.get(f"layer{i}/{j}")
            if new is None:
                raise ValueError(f"{path}: the file lacks weight {j} of layer {i}")
            try:
                new = check_weight_value(layer.name, name, w, new)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{path}: {exc} in the file") from exc
            updates.append((w, new))
    for w, new in updates:  # only after every check passed: all or nothing
        w.data[...] = new


def _write_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Write arrays to `path` through a temporary file and a rename: never half a file."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = _create_temporary(folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _create_temporary(folder: str) -> tuple[int, str]:
    """A new file next to the target, opened for writing: (descriptor, path).

    Unlike mkstemp (mode 0o600), it is created with mode 0o666 and the kernel applies the
    umask, so the renamed file has the permissions of any file the user writes.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(folder, f".tmp-{secrets.token_hex(8)}.npz")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file in {folder}")


def _read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All arrays of an .npz file, without pickles; damaged files give a ValueError."""
    try:
        with np.load(os.fspath(path), allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError):
        # numpy's own message is left out (from None): for a pickle it advises loading with
        # allow_pickle=True, which this package never does.
        raise ValueError(f"{path} is damaged or is not a microgradnet file") from None


def _meta(contents: dict[str, np.ndarray], path: Any) -> dict:
    if "__meta__" not in contents:
        raise ValueError(f"{path} is not a microgradnet file (no __meta__ entry)")
    try:
        meta = json.loads(str(contents["__meta__"]))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: its description is damaged: {exc}") from exc
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: its description is not a JSON object")
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: unknown format {meta.get('format')!r}")
    _check_schema(meta, path)
    return meta


def _check_schema(meta: dict, path: Any) -> None:
    """Check the shape of a file's description, so that a malformed one gives a ValueError
    naming the file and the layer, never a KeyError or TypeError from deep inside."""

    def bad(what: str) -> ValueError:
        return ValueError(f"{path}: malformed description: {what}")

    layers = meta.get("layers")
    if not isinstance(layers, list):
        raise bad("'layers' must be a list")
    for i, entry in enumerate(layers):
        if not isinstance(entry, dict):
            raise bad(f"layer {i} must be an object, got {entry!r:.60}")
        name = entry.get("name")
        if not isinstance(name, str) or not isinstance(entry.get("class_name"), str):
            raise bad(f"layer {i} ({name!r}) needs a string name and class_name")
        count = entry.get("weights")
        if type(count) is not int or count < 0:
            raise bad(f"layer {i} ({name!r}) needs a weight count, got {count!r}")
    if "model" in meta:
        model = meta["model"]
        if not isinstance(model, dict) or not isinstance(model.get("layers"), list):
            raise bad("'model' must be an object with a 'layers' list")
        if not isinstance(model.get("name", ""), str | None):
            raise bad(f"the model's name must be a string, got {model['name']!r}")
        if len(model["layers"]) != len(layers):
            raise bad(f"the model has {len(model['layers'])} layers, the weights are for "
                      f"{len(layers)}")
        for i, spec in enumerate(model["layers"]):
            name = layers[i]["name"]
            if not isinstance(spec, dict) or not isinstance(spec.get("class_name"), str):
                raise bad(f"layer {i} ({name!r}) needs a string class_name")
            if not isinstance(spec.get("config", {}), dict):
                raise bad(f"the config of layer {i} ({name!r}) must be an object")
    compiled = meta.get("compile")
    if compiled is not None:
        if not isinstance(compiled, dict) or not isinstance(compiled.get("optimizer"), dict):
            raise bad("'compile' must be null or an object with an 'optimizer' object")
        if not isinstance(compiled.get("loss"), str | dict):
            raise bad(f"the compiled loss must be a name or an object, got "
                      f"{compiled.get('loss')!r}")
        metrics = compiled.get("metrics", [])
        if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
            raise bad(f"the compiled metrics must be a list of names, got {metrics!r}")


def _optimizer_from_config(spec: dict) -> Any:
    """An optimizer of a known class from {"class_name", "config"} (nothing else is made)."""
    known = {name.lower(): name for name in ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad")}
    name = known.get(str(spec.get("class_name", "")).lower())
    if name is None:
        raise ValueError(f"unknown optimizer class {spec.get('class_name')!r} in the file")
    return getattr(optimizers_module, name).from_config(spec.get("config", {}))


def load_model(path: str | os.PathLike, model_class: type) -> Any:
    """Load a model of `model_class` written by its save(): architecture, weights, compile
    settings."""
    contents = _read_npz(path)
    meta = _meta(contents, path)
    if "model" not in meta:
        raise ValueError(f"{path} holds weights only (save_weights); use model.load_weights")
    model = _model_from_config(meta["model"], model_class, path, "the file",
                               [entry["name"] for entry in meta["layers"]], build=True)
    model.load_weights(path)
    compiled = meta.get("compile")
    if compiled:
        try:
            model.compile(
                optimizer=_optimizer_from_config(compiled["optimizer"]),
                loss=losses_module.get(compiled["loss"]),
                metrics=compiled.get("metrics", []),
            )
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"{path}: malformed compile settings: {exc}") from exc
    return model


def _model_from_config(config: dict, model_class: type, where: Any, source: str,
                       names: list | None = None, build: bool = False) -> Any:
    """A model of `model_class` made from get_config()'s output (checked to be an object
    with a 'layers' list), built if `build`; errors name `where` and the layer (by `names`,
    when given)."""
    layers = []
    for i, spec in enumerate(config["layers"]):
        try:
            layers.append(layers_module.deserialize(spec))
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            own = spec.get("config") if isinstance(spec, dict) else None
            name = names[i] if names is not None else (
                own.get("name") if isinstance(own, dict) else None)
            raise ValueError(
                f"{where}: layer {i} ({name!r}) cannot be made from its config: {exc}"
            ) from exc
    try:
        model = model_class(layers, name=config.get("name"))
        if build:
            model.build()
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"{where}: the model cannot be built from {source}: {exc}") from exc
    return model


def model_from_spec(spec: Any, model_class: type, where: str) -> Any:
    """An untrained model from {"class_name": "Sequential", "config": get_config()}, the
    architecture as to_json writes it."""
    config = spec.get("config") if isinstance(spec, dict) else None
    if (not isinstance(spec, dict) or spec.get("class_name") != model_class.__name__
            or not isinstance(config, dict) or not isinstance(config.get("layers"), list)):
        raise ValueError(
            f"{where}: expected {{\"class_name\": \"{model_class.__name__}\", \"config\": "
            f"{{\"name\": ..., \"layers\": [...]}}}} as {model_class.__name__}.to_json() "
            f"writes it, got {str(spec)[:80]!r}"
        )
    if not isinstance(config.get("name", ""), str | None):
        raise ValueError(f"{where}: the model's name must be a string, got {config['name']!r}")
    return _model_from_config(config, model_class, where, "its config")
