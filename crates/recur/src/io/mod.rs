//! Files in and out: safetensors state dicts (PyTorch's names), atomic writes.

pub mod model_file;
pub mod safetensors_io;
pub mod state_dict;

pub use model_file::import_state_dict;
pub use safetensors_io::{write_atomically, write_f32, TensorFile};
