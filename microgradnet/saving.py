"""Saving and loading: weights alone, or a whole model, in one .npz file.

A file holds the weight arrays and a JSON description (format, layers, and for a whole
model its architecture and compile settings). It is read with allow_pickle=False, so
loading a file cannot run code; every array's declared size is checked against the file
before anything is allocated, and a whole model is built only within a limit of weight
values (`max_params`). Writes go through a temporary file and a rename, so a failed write
never leaves half a file, and the next save of the path removes what a killed one left.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import tokenize
import zipfile
from typing import Any

import numpy as np

from . import layers as layers_module
from . import losses as losses_module
from . import optimizers as optimizers_module
from .layers import Layer, check_weight_value, weight_budget

try:
    import fcntl
except ImportError:  # not POSIX: a killed save's temporary is not recognised as stale
    fcntl = None

__all__ = ["check_suffix", "DEFAULT_MAX_PARAMS", "FORMAT", "load_model", "load_weights",
           "max_params_limit", "model_from_spec", "write"]


def __dir__() -> list[str]:
    return list(__all__)  # what tab completion offers: the public names, not np, os, ...


FORMAT = "microgradnet-1"
# The most weight values load_model builds a model with (and any array a file may hold),
# unless its max_params or the environment variable says otherwise.
DEFAULT_MAX_PARAMS = 10**9
_MAX_PARAMS_ENV = "MICROGRADNET_MAX_PARAMS"
_MAX_DEFLATE_RATIO = 1032  # deflate's largest expansion: a member cannot hold more


def max_params_limit(max_params: int | None = None) -> int:
    """The limit of weight values: max_params, else $MICROGRADNET_MAX_PARAMS, else 10**9."""
    if max_params is None:
        env = os.environ.get(_MAX_PARAMS_ENV)
        if env is None:
            return DEFAULT_MAX_PARAMS
        try:
            max_params = int(env)
        except ValueError:
            raise ValueError(f"{_MAX_PARAMS_ENV} must be an int, got {env!r}") from None
    if isinstance(max_params, bool) or not isinstance(max_params, (int, np.integer)) or (
            max_params < 0):
        raise ValueError(f"max_params must be a non-negative int, got {max_params!r}")
    return int(max_params)


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
    contents = _read_npz(path, max(max_params_limit(), model.count_params()))
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
    """Write arrays to `path` through a temporary file and a rename: never half a file.

    A symbolic link is written through (its target is replaced, the link stays). The
    temporary's name is tied to the target's; it is locked while written, so the next save
    of the same path removes one a killed process left, and never one still being written.
    """
    path = os.path.realpath(os.fspath(path))
    folder, base = os.path.split(path)
    prefix = f".tmp-{hashlib.sha1(base.encode('utf-8', 'surrogatepass')).hexdigest()[:12]}-"
    _remove_stale_temporaries(folder, prefix)
    fd, tmp = _create_temporary(folder, prefix)
    # POSIX: the lock stays held (its descriptor open) until the rename, so an unlocked,
    # non-empty temporary is one whose writer died. (Windows renames no open file.)
    lock = fd if fcntl is not None else None
    try:
        if lock is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        with os.fdopen(os.dup(fd) if lock is not None else fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    finally:
        if lock is not None:
            os.close(lock)


def _remove_stale_temporaries(folder: str, prefix: str) -> None:
    """Delete the temporaries of earlier saves of this path whose writer is gone."""
    if fcntl is None:
        return
    try:
        names = [n for n in os.listdir(folder) if n.startswith(prefix) and n.endswith(".npz")]
    except OSError:
        return  # the write below reports what is wrong with the folder
    for name in names:
        tmp = os.path.join(folder, name)
        try:
            fd = os.open(tmp, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # Empty: maybe a writer between creating and locking it; leave it.
            if os.fstat(fd).st_size > 0:
                os.unlink(tmp)
        except OSError:
            pass  # locked: another save of this path is writing it
        finally:
            os.close(fd)


def _create_temporary(folder: str, prefix: str = ".tmp-") -> tuple[int, str]:
    """A new file next to the target, opened for writing: (descriptor, path).

    Unlike mkstemp (mode 0o600), it is created with mode 0o666 and the kernel applies the
    umask, so the renamed file has the permissions of any file the user writes.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(folder, f"{prefix}{secrets.token_hex(8)}.npz")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file in {folder}")


def _damaged(path: Any) -> ValueError:
    # Only that (tests/test_messages.py): what numpy or a crafted header says is no help.
    return ValueError(f"{path} is damaged or is not a microgradnet file")


def _check_members(path: Any, limit: int) -> None:
    """Check every array's declared size against the bytes the file holds for it (and the
    limit of values), before numpy allocates it: a damaged or crafted header is refused."""
    archive_size = os.path.getsize(path)
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            stored = info.compress_type == zipfile.ZIP_STORED
            if info.compress_size > archive_size or info.file_size > (
                    info.compress_size if stored else info.compress_size * _MAX_DEFLATE_RATIO):
                raise _damaged(path)  # more bytes than the file has
            with zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                else:
                    raise _damaged(path)  # not a version np.savez writes
                header = f.tell()
            if dtype.hasobject:
                raise _damaged(path)  # a pickle
            count = math.prod(shape)
            if count * dtype.itemsize != info.file_size - header:
                raise _damaged(path)  # the header's size is not the data's
            if dtype.kind in "fiu" and count > limit:
                raise ValueError(f"{path}: member {info.filename!r} holds {count:,} values, "
                                 f"more than max_params={limit:,} (the limit of weight "
                                 f"values; ${_MAX_PARAMS_ENV} sets its default)")


def _read_npz(path: str | os.PathLike, limit: int | None = None) -> dict[str, np.ndarray]:
    """All arrays of an .npz file, without pickles; damaged files give a ValueError."""
    try:
        _check_members(os.fspath(path), max_params_limit() if limit is None else limit)
        with np.load(os.fspath(path), allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, NotImplementedError,
            RuntimeError, SyntaxError, tokenize.TokenError) as exc:
        # RuntimeError: zipfile's "encrypted, password required" (a damaged flag bit);
        # SyntaxError, TokenError (and RecursionError, a RuntimeError): numpy parses an
        # array's header as Python literals, so a damaged header fails there
        if isinstance(exc, ValueError) and str(exc).startswith(str(path)):
            raise exc from None  # our own check: it says what is wrong with the file
        # numpy's own message is left out (from None): for a pickle it advises loading with
        # allow_pickle=True, which this package never does.
        raise _damaged(path) from None


def _meta(contents: dict[str, np.ndarray], path: Any) -> dict:
    if "__meta__" not in contents:
        raise ValueError(f"{path} is not a microgradnet file (no __meta__ entry)")
    try:
        meta = json.loads(str(contents["__meta__"]))
    except (json.JSONDecodeError, RecursionError) as exc:
        # RecursionError: nested deeper than the parser goes (no file of ours is)
        raise ValueError(f"{path}: its description is damaged: "
                         f"{exc if isinstance(exc, json.JSONDecodeError) else 'nested too deeply'}"
                         ) from exc
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


def load_model(path: str | os.PathLike, model_class: type, max_params: int | None = None) -> Any:
    """Load a model of `model_class` written by its save(): architecture, weights, compile
    settings; a model of more than max_params weight values is refused before it is built."""
    limit = max_params_limit(max_params)
    contents = _read_npz(path, limit)
    meta = _meta(contents, path)
    if "model" not in meta:
        raise ValueError(f"{path} holds weights only (save_weights); use model.load_weights")
    with weight_budget(limit, f"the model has more than max_params={limit:,} weight values"):
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
