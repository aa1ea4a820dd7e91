"""A recur model file as a PyTorch module.

    from recur_torch import load
    model = load("model.safetensors")            # a torch.nn.Module, in float32
    mean, precision = model(x, lengths)          # x: [T, B, D] time-major; lengths: [B] or None

`recur export --run DIR` writes this file beside the run's model.safetensors. The module
is built from torch.nn parts — nn.LSTM / nn.GRU / nn.RNN encoders (packed sequences, so
padding never changes a result), the decoupled twin map, the fusion, the head — and its
state_dict holds recur's tensors under recur's names ("forward." is "fwd." here: a
Module's `forward` is its call). `save(model, path)` writes them back for recur
(`SequenceModel::load`, `recur import`). Models with no torch.nn equivalent (Jordan, GRU
reset_before, layer norm, a learned initial state) are refused. Needs torch and
safetensors.
"""
import json

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

MODULES = {"lstm": torch.nn.LSTM, "gru_reset_after": torch.nn.GRU, "elman_tanh": torch.nn.RNN, "elman_relu": torch.nn.RNN}
CONFIG_KEY = "recur.model_config"


def _encoder(cfg, input_size=None, layers=None):
    kind = cfg["cell"]
    kwargs = dict(input_size=input_size or cfg["input_size"], hidden_size=cfg["hidden_size"], num_layers=layers or cfg["num_layers"])
    if kind.startswith("elman"):
        kwargs["nonlinearity"] = "relu" if kind == "elman_relu" else "tanh"
    return MODULES[kind](**kwargs)


def _run(net, x, lengths):
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
    out, _ = net(packed)
    return torch.nn.utils.rnn.pad_packed_sequence(out, total_length=x.shape[0])[0]


def reverse_within_lengths(x, lengths):
    """Each sequence's own steps reversed, padding left in place (recur's backward input)."""
    out = torch.zeros_like(x)
    for b, n in enumerate(lengths.tolist()):
        out[:n, b] = x[:n, b].flip(0)
    return out


class RecurModel(torch.nn.Module):
    """recur's SequenceModel: encoder branches, twin map, fusion, head (see the module doc)."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        enc = config["encoder"]
        if enc["cell"] not in MODULES or enc.get("layer_norm") or enc.get("learn_initial_state"):
            raise ValueError("no torch.nn equivalent: cell %s, layer_norm %s, learned initial state %s"
                             % (enc["cell"], enc.get("layer_norm"), enc.get("learn_initial_state")))
        h = enc["hidden_size"]
        self.fwd = _encoder(enc)
        width = h
        if enc["bidirectional"]:
            # decoupled: the backward branch is the teacher of training, kept (so that the
            # tensors round-trip) but not run; the twin map estimates its states
            self.backward = _encoder(enc)
            if config["coupling"] == "decoupled":
                self.twin = torch.nn.Linear(h, h)
            fusion = config["fusion"]
            self.fusion = torch.nn.Module()
            if fusion == "gated":
                self.fusion.gate = torch.nn.Linear(2 * h, h)
            elif fusion in ("fuser_gru", "fuser_lstm"):
                cell = "gru_reset_after" if fusion == "fuser_gru" else "lstm"
                self.fusion.fuser = _encoder(dict(enc, cell=cell), input_size=2 * h, layers=1)
            width = 2 * h if fusion == "concat" else h
        self.head = torch.nn.Module()
        self.head.mean = torch.nn.Linear(width, config["outputs"])
        if config["head"] in ("gaussian", "quantile"):
            self.head.precision = torch.nn.Linear(width, config.get("precisions", 1))

    def forward(self, x, lengths=None):
        """x: [T, B, D]; returns (x̂ [T, B, O], λ̂ [T, B] (one per step) or [T, B, P] (one per
        block of O / P outputs), or a quantile head's distances [T, B, 2·O] (the O below x̂,
        then the O above: its band runs from x̂ - below to x̂ + above), or None), zero past
        each length."""
        steps, batch = x.shape[0], x.shape[1]
        if lengths is None:
            lengths = torch.full((batch,), steps, dtype=torch.long)
        enc = self.config["encoder"]
        h_f = _run(self.fwd, x, lengths)
        z = h_f
        if enc["bidirectional"]:
            if self.config["coupling"] == "decoupled":
                h_b = self.twin(h_f)
            else:
                h_b = reverse_within_lengths(_run(self.backward, reverse_within_lengths(x, lengths), lengths), lengths)
            fusion = self.config["fusion"]
            if fusion == "concat":
                z = torch.cat([h_f, h_b], -1)
            elif fusion == "sum":
                z = h_f + h_b
            elif fusion == "mean":
                z = (h_f + h_b) / 2
            elif fusion == "product":
                z = h_f * h_b
            elif fusion == "gated":
                g = torch.sigmoid(self.fusion.gate(torch.cat([h_f, h_b], -1)))
                z = g * h_f + (1 - g) * h_b
            else:
                z = _run(self.fusion.fuser, torch.cat([h_f, h_b], -1), lengths)
        mean = self.head.mean(z)
        precision = None
        if self.config["head"] in ("gaussian", "quantile"):
            # a detached precision reads z as a constant (its loss trains the precision alone)
            u = self.head.precision(z.detach() if self.config.get("detach_precision") else z)
            precision = torch.nn.functional.softplus(u)
            if self.config.get("precisions", 1) == 1:
                precision = precision.squeeze(-1)
        return mean, precision


def _to_torch_name(name):
    return "fwd." + name[len("forward."):] if name.startswith("forward.") else name


def _to_recur_name(name):
    return "forward." + name[len("fwd."):] if name.startswith("fwd.") else name


def load(path):
    """The model in a recur model file, as a RecurModel (float32, eval mode)."""
    with safe_open(path, "pt") as f:
        config = json.loads(f.metadata()[CONFIG_KEY])
    model = RecurModel(config)
    model.load_state_dict({_to_torch_name(k): v for k, v in load_file(path).items()})
    return model.eval()


def save(model, path):
    """A RecurModel's tensors under recur's names, with its config, for recur to load."""
    tensors = {_to_recur_name(k): v.detach().float().contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, path, metadata={CONFIG_KEY: json.dumps(model.config)})
