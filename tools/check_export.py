#!/usr/bin/env python3
"""Checks that models saved by recur reproduce their outputs in PyTorch.

    cargo run --release -p recur --example export_sample -- /tmp/export
    python3 tools/check_export.py /tmp/export

For every modelNN.safetensors (SequenceModel::save: tensors under recur's names, config
JSON in the metadata) and its modelNN.sample.safetensors (input, lengths, recur's
outputs), the model is rebuilt by recur_torch.load (torch.nn modules: encoder branches
from their PyTorch-named weights, the backward branch on per-row reversed, packed input,
twin map, fusion, head) and its outputs compared in float64 (|a-b| <= 1e-5 + 1e-4|b|).
recur_torch.save then writes it back, and the file must hold the same tensors and config.
Needs torch and safetensors; CI never runs this.
"""
import glob
import json
import os
import sys
import tempfile

import torch
from safetensors import safe_open
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import recur_torch  # noqa: E402


def check(path):
    with safe_open(path, "pt") as f:
        config = json.loads(f.metadata()[recur_torch.CONFIG_KEY])
    enc = config["encoder"]
    desc = "%s %s %s %s %s" % (enc["cell"], "bi" if enc["bidirectional"] else "uni", config["coupling"], config["fusion"], config["head"])
    try:
        model = recur_torch.load(path).double()
    except ValueError as e:
        return desc + ": skipped (" + str(e) + ")"
    sample = load_file(path.replace(".safetensors", ".sample.safetensors"))
    x, lengths = sample["input"].double(), sample["lengths"].long()
    failures = []
    with torch.no_grad():
        mean, precision = model(x, lengths)
    want = sample["mean"].double().reshape(mean.shape)
    if not torch.allclose(mean, want, rtol=1e-4, atol=1e-5):
        failures.append("mean: max |diff| %.2e" % (mean - want).abs().max())
    if "precision" in sample:
        want = sample["precision"].double().reshape(precision.shape)
        if not torch.allclose(precision, want, rtol=1e-4, atol=1e-5):
            failures.append("precision: max |diff| %.2e" % (precision - want).abs().max())
    with tempfile.TemporaryDirectory() as d:
        again = os.path.join(d, "again.safetensors")
        recur_torch.save(model, again)
        original, saved = load_file(path), load_file(again)
        if sorted(original) != sorted(saved) or any(not torch.equal(original[k], saved[k]) for k in original):
            failures.append("save: the tensors written back differ")
        with safe_open(again, "pt") as f:
            if json.loads(f.metadata()[recur_torch.CONFIG_KEY]) != config:
                failures.append("save: the config written back differs")
    return desc + (": " + "; ".join(failures) if failures else ": ok")


def main():
    paths = sorted(p for p in glob.glob(sys.argv[1] + "/model*.safetensors") if not p.endswith(".sample.safetensors"))
    if not paths:
        sys.exit("no model*.safetensors in " + sys.argv[1])
    bad = 0
    for p in paths:
        result = check(p)
        bad += not (result.endswith(": ok") or ": skipped" in result)
        print(p.split("/")[-1], result)
    print("%d models, %d mismatches" % (len(paths), bad))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
