#!/usr/bin/env python3
"""Checks that models saved by recur reproduce their outputs in PyTorch.

    cargo run --release -p recur --example export_sample -- /tmp/export
    python3 tools/check_export.py /tmp/export

For every modelNN.safetensors (SequenceModel::save: tensors under recur's names, config
JSON in the metadata) and its modelNN.sample.safetensors (input, lengths, recur's
outputs), the model is rebuilt from torch.nn modules — encoder branches from their
PyTorch-named weights, the backward branch on per-row reversed (packed) input, twin map,
fusion, head — and its outputs compared (|a-b| <= 1e-5 + 1e-4|b|). Needs torch and
safetensors; CI never runs this.
"""
import glob
import json
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file

MODULES = {"lstm": torch.nn.LSTM, "gru_reset_after": torch.nn.GRU, "elman_tanh": torch.nn.RNN, "elman_relu": torch.nn.RNN}


def encoder(tensors, prefix, cfg, input_size=None, layers=None):
    kind = cfg["cell"]
    kwargs = dict(input_size=input_size or cfg["input_size"], hidden_size=cfg["hidden_size"], num_layers=layers or cfg["num_layers"])
    if kind.startswith("elman"):
        kwargs["nonlinearity"] = "relu" if kind == "elman_relu" else "tanh"
    net = MODULES[kind](**kwargs).double()
    net.load_state_dict({k[len(prefix):]: v.double() for k, v in tensors.items() if k.startswith(prefix)})
    return net


def run(net, x, lengths):
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
    out, _ = net(packed)
    return torch.nn.utils.rnn.pad_packed_sequence(out, total_length=x.shape[0])[0]


def reverse_within_lengths(x, lengths):
    out = torch.zeros_like(x)
    for b, n in enumerate(lengths.tolist()):
        out[:n, b] = x[:n, b].flip(0)
    return out


def linear(tensors, prefix):
    w, b = tensors[prefix + ".weight"].double(), tensors[prefix + ".bias"].double()
    return lambda z: z @ w.T + b


def check(path):
    with safe_open(path, "pt") as f:
        config = json.loads(f.metadata()["recur.model_config"])
    enc = config["encoder"]
    if enc["cell"] not in MODULES or enc["layer_norm"]:
        return "skipped (no PyTorch equivalent)"
    tensors = load_file(path)
    sample = load_file(path.replace(".safetensors", ".sample.safetensors"))
    x = sample["input"].double()
    lengths = sample["lengths"].long()
    with torch.no_grad():
        h_f = run(encoder(tensors, "forward.", enc), x, lengths)
        z = h_f
        if enc["bidirectional"]:
            if config["coupling"] == "decoupled":
                h_b = linear(tensors, "twin")(h_f)
            else:
                rev = run(encoder(tensors, "backward.", enc), reverse_within_lengths(x, lengths), lengths)
                h_b = reverse_within_lengths(rev, lengths)
            fusion = config["fusion"]
            if fusion == "concat":
                z = torch.cat([h_f, h_b], -1)
            elif fusion == "sum":
                z = h_f + h_b
            elif fusion == "mean":
                z = (h_f + h_b) / 2
            elif fusion == "product":
                z = h_f * h_b
            elif fusion == "gated":
                g = torch.sigmoid(linear(tensors, "fusion.gate")(torch.cat([h_f, h_b], -1)))
                z = g * h_f + (1 - g) * h_b
            else:
                cell = "gru_reset_after" if fusion == "fuser_gru" else "lstm"
                fcfg = dict(enc, cell=cell)
                fuser = encoder(tensors, "fusion.fuser.", fcfg, input_size=2 * enc["hidden_size"], layers=1)
                z = run(fuser, torch.cat([h_f, h_b], -1), lengths)
        mean = linear(tensors, "head.mean")(z)
        failures = []
        if not torch.allclose(mean, sample["mean"].double(), rtol=1e-4, atol=1e-5):
            failures.append("mean: max |diff| %.2e" % (mean - sample["mean"].double()).abs().max())
        if "precision" in sample:
            lam = torch.nn.functional.softplus(linear(tensors, "head.precision")(z)).squeeze(-1)
            if not torch.allclose(lam, sample["precision"].double(), rtol=1e-4, atol=1e-5):
                failures.append("precision: max |diff| %.2e" % (lam - sample["precision"].double()).abs().max())
    desc = "%s %s %s %s %s" % (enc["cell"], "bi" if enc["bidirectional"] else "uni", config["coupling"], config["fusion"], config["head"])
    return desc + (": " + "; ".join(failures) if failures else ": ok")


def main():
    paths = sorted(p for p in glob.glob(sys.argv[1] + "/model*.safetensors") if not p.endswith(".sample.safetensors"))
    if not paths:
        sys.exit("no model*.safetensors in " + sys.argv[1])
    bad = 0
    for p in paths:
        result = check(p)
        bad += not (result.endswith(": ok") or result.startswith("skipped"))
        print(p.split("/")[-1], result)
    print("%d models, %d mismatches" % (len(paths), bad))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
