"""The network to look inside: from a TorchScript file, a restorekit model folder or a registered name.

:func:`open_model` turns the command line's MODEL into an :class:`Inspected`:
the ``torch.nn.Module``, the ``(C, H, W)`` it takes where known, and its
layers by name (``named_modules()``).  :meth:`Inspected.layer_fn` gives a
function ``x -> the output of that layer`` through which gradients flow:

* a Python module (a model folder, a registered network): a forward hook on
  the named submodule records its output, and the forward pass stops there
  (nothing after the layer runs, so a later layer that rejects the input
  size does not matter);
* a TorchScript module, which takes no Python hooks: its compiled
  ``forward`` graph is cut at the call of the layer (and, for a nested
  layer, at the call of each module on the way to it), and the cut graphs
  run as functions of their module.

A file is read as TorchScript only when it is one (a zip archive with a
``code/`` folder and ``constants.pkl``); anything else, a pickled
checkpoint in particular, is refused before torch opens it: restorekit
never unpickles a user's file.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import UsageError
from ..suggest import did_you_mean


class _Reached(Exception):
    """Raised by the hook once the layer has run: nothing after it needs to."""


@dataclass
class Inspected:
    """A loaded network: ``module`` (eval mode, on the CPU until :meth:`to`, weights frozen), what it is, and
    its layers."""

    module: Any
    source: str  # "torchscript", "model folder" or "network"
    name: str  # the path or the network's spec
    shape: tuple[int | None, int | None, int | None] | None = None  # (C, H, W); None where free
    call: Callable[[Any], Any] | None = None  # how to run the whole network (default: module(x))
    notes: list[str] = field(default_factory=list)

    @property
    def scripted(self) -> bool:
        import torch

        return isinstance(self.module, torch.jit.ScriptModule)

    def layers(self) -> list[tuple[str, str]]:
        """``(name, type)`` of every named submodule, in registration order (the network itself excluded)."""
        rows = []
        for name, mod in self.module.named_modules():
            if not name:
                continue
            kind = getattr(mod, "original_name", None) if self.scripted else None
            rows.append((name, kind or type(mod).__name__))
        return rows

    def check_layer(self, layer: str) -> None:
        names = [n for n, _ in self.layers()]
        if layer not in names:
            valid = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
            raise UsageError(
                f"{self.describe()} has no layer '{layer}'{did_you_mean(layer, names, cutoff=0.5)} "
                f"(layers: {valid or '(none)'}; see --list-layers)"
            )

    def to(self, device) -> "Inspected":
        """The network moved to ``device`` (a torch device; in place, as ``Module.to``); itself."""
        self.module.to(device)
        return self

    def describe(self) -> str:
        return f"network '{self.name}'" if self.source == "network" else f"model '{self.name}'"

    def layer_fn(self, layer: str) -> Callable[[Any], Any]:
        """``x (1, C, H, W) -> the layer's output`` (differentiable in ``x``)."""
        self.check_layer(layer)
        if self.scripted:
            return _script_layer_fn(self.module, layer, self.describe())
        return _hook_layer_fn(self.module, layer, self.call)


def _hook_layer_fn(module, layer: str, call) -> Callable[[Any], Any]:
    target = dict(module.named_modules())[layer]

    def run(x):
        got: list[Any] = []

        def hook(_mod, _inp, out):
            got.append(out)
            raise _Reached

        handle = target.register_forward_hook(hook)
        try:
            (call or module)(x)
        except _Reached:
            pass
        finally:
            handle.remove()
        if not got:
            raise UsageError(f"layer '{layer}' is not used by the network's forward pass")
        out = got[0]
        if isinstance(out, (tuple, list)):
            out = out[0]
        return out

    return run


# -- TorchScript: cut the compiled forward at the layer's call ------------------------------------------
def _find_call(graph, child: str):
    """The first ``prim::CallMethod[name="forward"]`` on ``self.<child>`` in the graph's top block."""
    self_value = next(iter(graph.inputs()))
    for node in graph.nodes():
        if node.kind() != "prim::CallMethod" or node.s("name") != "forward":
            continue
        obj = node.inputsAt(0).node()
        if obj.kind() == "prim::GetAttr" and obj.s("name") == child and obj.inputsAt(0) == self_value:
            return node
    return None


def _cut(method, child: str, want_output: bool, where: str):
    """A function ``(module, *inputs) -> the child's inputs (a tuple) or its output``."""
    import torch

    graph = method.graph.copy()
    node = _find_call(graph, child)
    if node is None:
        raise UsageError(
            f"{where}: the scripted forward does not call '{child}' at one fixed place (it is not called, or "
            "only inside a branch or loop), so its output cannot be taken; choose another layer"
        )
    values = [node.output()] if want_output else list(node.inputs())[1:]
    for _ in range(len(list(graph.outputs()))):
        graph.eraseOutput(0)
    for v in values:  # several outputs: the function returns a tuple
        graph.registerOutput(v)
    torch._C._jit_pass_dce(graph)
    return torch._C._create_function_from_graph(f"restorekit_cut_{child}", graph)


def _script_layer_fn(module, layer: str, where: str) -> Callable[[Any], Any]:
    parts = layer.split(".")
    steps = []  # (module whose forward is cut, function)
    current = module
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        try:
            fn = _cut(current.forward, part, last, where)
        except UsageError:
            raise
        except Exception as exc:  # noqa: BLE001 - an unusual graph: say which layer, not a traceback
            raise UsageError(f"{where}: cannot take the output of layer '{layer}' from the scripted forward "
                             f"({type(exc).__name__}); choose another layer") from None
        steps.append((current, fn))
        current = getattr(current, part)

    def run(x):
        args: tuple = (x,)
        out = x
        for mod, fn in steps:
            out = fn(mod._c, *args)
            args = out if isinstance(out, tuple) else (out,)
        return out

    return run


# -- opening MODEL -----------------------------------------------------------------------------------
def _quote(p: Path | str) -> str:
    return "'" + os.fspath(p) + "'"


def _sniff(path: Path) -> str:
    """"torchscript", "checkpoint" (a torch.save zip: pickled objects), "pickle" or "other"."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise UsageError(f"cannot read model {_quote(path)}: {(exc.strerror or str(exc)).lower()}") from None
    if head[:2] in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05"):
        return "pickle"
    if not zipfile.is_zipfile(path):
        return "other"
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return "other"
    parts = [n.split("/", 1)[1] for n in names if "/" in n]
    if "constants.pkl" in parts and any(p.startswith("code/") for p in parts):
        return "torchscript"
    if "data.pkl" in parts:
        return "checkpoint"
    return "other"


def _load_torchscript(path: Path) -> Inspected:
    import torch

    kind = _sniff(path)
    how = "export it with torch.jit.script(model).save(path) or torch.jit.trace"
    if kind == "pickle":
        raise UsageError(f"model {_quote(path)} is a pickle file, not TorchScript; restorekit does not unpickle "
                         f"files (it can run code): {how}")
    if kind == "checkpoint":
        raise UsageError(f"model {_quote(path)} is a torch.save checkpoint (pickled objects), not TorchScript; "
                         f"restorekit does not unpickle files (it can run code): {how}")
    if kind != "torchscript":
        raise UsageError(f"model {_quote(path)} is not a TorchScript file; {how}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch >= 2.9 deprecates TorchScript
            module = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - a damaged archive is the user's to fix
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UsageError(f"cannot load TorchScript model {_quote(path)}: {first}") from None
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return Inspected(module, "torchscript", os.fspath(path))


def _load_folder(path: Path) -> Inspected:
    import torch

    from ..learn.model import load

    loaded = load(path)  # safetensors + model.json: no code runs
    net = loaded.net
    for p in net.parameters():
        p.requires_grad_(False)
    call = None
    notes = []
    if loaded.noise_map:
        sigma = 25 / 255

        def call(x, _net=net):
            return _net(x, torch.full((x.shape[0],), sigma, dtype=x.dtype, device=x.device))

        notes.append("the denoiser is told sigma 25 (its noise-level input)")
    return Inspected(net, "model folder", os.fspath(path), (loaded.image_channels, None, None), call, notes)


def _load_network(spec: str, registry) -> Inspected:
    net = registry.create("network", spec)
    module = net.load()
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    shape = net.input_shape()
    return Inspected(module, "network", net.spec, tuple(shape) if shape else None)


def open_model(model: str, registry=None) -> Inspected:
    """MODEL as the command line gives it: a TorchScript file, a model folder or a registered network spec."""
    path = Path(model)
    if path.is_dir():
        from ..learn.model import CARD, WEIGHTS

        if not (path / CARD).is_file() or not (path / WEIGHTS).is_file():
            raise UsageError(f"folder {_quote(path)} is not a restorekit model folder: it needs {CARD} and "
                             f"{WEIGHTS}")
        return _load_folder(path)
    if path.is_file():
        return _load_torchscript(path)
    if registry is None:
        from ..plugins import get_host

        registry = get_host().registry
    names = registry.names("network")
    name = model.split(":", 1)[0]
    if name in names:
        return _load_network(model, registry)
    looks_like_path = any(ch in model for ch in "/\\.") or os.path.lexists(path)
    valid = ", ".join(names) or "(none registered)"
    if looks_like_path:
        raise UsageError(f"model {_quote(path)} does not exist (MODEL is a TorchScript file, a restorekit model "
                         f"folder or a network name: {valid})")
    raise UsageError(f"unknown network '{name}'{did_you_mean(name, names, cutoff=0.5)} (valid: {valid}; MODEL may "
                     "also be a TorchScript file or a restorekit model folder)")
