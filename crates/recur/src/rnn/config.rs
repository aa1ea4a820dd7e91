//! What a recurrent encoder is made of.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The recurrent cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CellKind {
    /// Elman SRN with tanh (PyTorch `RNN_TANH`).
    ElmanTanh,
    /// Elman SRN with ReLU (PyTorch `RNN_RELU`).
    ElmanRelu,
    /// Jordan network: the context is the previous output y_{t−1} (width H, ψ = identity).
    Jordan,
    /// LSTM, gates i,f,g,o.
    Lstm,
    /// GRU, reset after the recurrent product (PyTorch/cuDNN).
    GruResetAfter,
    /// GRU, reset before the recurrent product (the deck, Cho et al. 2014).
    GruResetBefore,
}

impl CellKind {
    /// Gate blocks: `G = gates·H`.
    pub fn gates(self) -> usize {
        match self {
            CellKind::ElmanTanh | CellKind::ElmanRelu | CellKind::Jordan => 1,
            CellKind::Lstm => 4,
            CellKind::GruResetAfter | CellKind::GruResetBefore => 3,
        }
    }

    pub fn has_cell_state(self) -> bool {
        self == CellKind::Lstm
    }

    /// Number of H-wide layer-norm gain vectors on the gates.
    pub fn norm_gate_chunks(self) -> usize {
        match self {
            CellKind::ElmanTanh | CellKind::ElmanRelu | CellKind::Jordan => 1,
            CellKind::Lstm | CellKind::GruResetAfter => 4,
            CellKind::GruResetBefore => 3,
        }
    }

    /// PyTorch's `mode` string, where PyTorch has the cell.
    pub fn torch_mode(self) -> Option<&'static str> {
        match self {
            CellKind::ElmanTanh => Some("RNN_TANH"),
            CellKind::ElmanRelu => Some("RNN_RELU"),
            CellKind::Lstm => Some("LSTM"),
            CellKind::GruResetAfter => Some("GRU"),
            CellKind::GruResetBefore | CellKind::Jordan => None,
        }
    }

    /// The cell for a PyTorch `mode` string.
    ///
    /// # Errors
    /// An unknown mode.
    pub fn from_torch_mode(mode: &str) -> Result<Self> {
        Ok(match mode {
            "RNN_TANH" => CellKind::ElmanTanh,
            "RNN_RELU" => CellKind::ElmanRelu,
            "LSTM" => CellKind::Lstm,
            "GRU" => CellKind::GruResetAfter,
            other => {
                return Err(Error::invalid("mode", format!("`{other}` is not one of RNN_TANH, RNN_RELU, LSTM, GRU")))
            }
        })
    }

    pub const ALL: [CellKind; 6] = [
        CellKind::ElmanTanh,
        CellKind::ElmanRelu,
        CellKind::Jordan,
        CellKind::Lstm,
        CellKind::GruResetAfter,
        CellKind::GruResetBefore,
    ];
}

/// A stacked, optionally bidirectional recurrent encoder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RnnConfig {
    pub cell: CellKind,
    pub input_size: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub bidirectional: bool,
    /// Dropout on each layer's output except the last (a fresh mask per element and step).
    pub dropout: f64,
    /// Layer normalisation of every gate pre-activation (and of c_t in LSTM).
    pub layer_norm: bool,
    /// Variational dropout probability on each layer's input (one mask per sequence).
    pub input_dropout: f64,
    /// Variational dropout probability on the recurrent state (one mask per sequence).
    pub state_dropout: f64,
    /// Learn h0 (and c0) as parameters instead of starting from zero.
    pub learn_initial_state: bool,
}

impl Default for RnnConfig {
    fn default() -> Self {
        RnnConfig {
            cell: CellKind::GruResetAfter,
            input_size: 1,
            hidden_size: 32,
            num_layers: 1,
            bidirectional: false,
            dropout: 0.0,
            layer_norm: false,
            input_dropout: 0.0,
            state_dropout: 0.0,
            learn_initial_state: false,
        }
    }
}

impl RnnConfig {
    /// This config with every dropout probability zero.
    pub fn without_dropout(&self) -> Self {
        RnnConfig { dropout: 0.0, input_dropout: 0.0, state_dropout: 0.0, ..self.clone() }
    }

    pub fn directions(&self) -> usize {
        if self.bidirectional {
            2
        } else {
            1
        }
    }

    /// Width of the encoder's output, `dirs·H`.
    pub fn output_size(&self) -> usize {
        self.directions() * self.hidden_size
    }

    /// # Errors
    /// A zero size or a probability outside [0, 1).
    pub fn validate(&self) -> Result<()> {
        for (what, v) in
            [("input_size", self.input_size), ("hidden_size", self.hidden_size), ("num_layers", self.num_layers)]
        {
            if v == 0 {
                return Err(Error::invalid(what, "must be at least 1"));
            }
        }
        for (what, p) in
            [("dropout", self.dropout), ("input_dropout", self.input_dropout), ("state_dropout", self.state_dropout)]
        {
            if !(0.0..1.0).contains(&p) {
                return Err(Error::invalid(what, format!("{p} is not a probability in [0, 1)")));
            }
        }
        Ok(())
    }
}
