//! Files in and out: safetensors state dicts (PyTorch's names), atomic writes.

pub mod json;
pub mod model_file;
pub mod safetensors_io;
pub mod state_dict;

pub use json::{read_json_if_present, write_json_atomically};
pub use model_file::import_state_dict;
pub use safetensors_io::{write_atomically, write_f32, TensorFile};
