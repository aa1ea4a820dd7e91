//! Files in and out: safetensors state dicts (PyTorch's names), atomic writes.

pub mod json;
pub mod model_file;
pub mod safetensors_io;
pub mod state_dict;

pub use json::{read_json_if_present, write_json_atomically};
pub use model_file::import_state_dict;
pub use safetensors_io::{write_atomically, write_f32, TensorFile};

/// A short fingerprint of `bytes` (64-bit FNV-1a, as 16 hex digits): the same bytes give
/// the same one on every platform and release, so a file saved beside a model can say
/// which model it was made with. Not a defence against tampering.
pub fn fingerprint(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_fingerprint_is_fnv_1a() {
        // the reference values of FNV-1a 64 (Fowler, Noll, Vo)
        assert_eq!(super::fingerprint(b""), "cbf29ce484222325");
        assert_eq!(super::fingerprint(b"a"), "af63dc4c8601ec8c");
        assert_eq!(super::fingerprint(b"foobar"), "85944171f73967e8");
    }
}
