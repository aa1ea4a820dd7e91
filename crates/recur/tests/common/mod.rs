//! Helpers shared by the integration tests.

/// The loss whose gradient a parameter receives. Decoupled training stops gradients: the
/// twin loss treats h← as a constant and the teacher path treats h→ as one, so the
/// forward stack and twin map learn from student + twin, the backward stack from the
/// teacher path, fusion and head from both paths. Other models learn everything from
/// their one (student) path.
pub fn surrogate(decoupled: bool, name: &str, (student, teacher, twin): (f64, f64, f64)) -> f64 {
    if !decoupled {
        student
    } else if name.starts_with("forward.") || name.starts_with("twin.") {
        student + twin
    } else if name.starts_with("backward.") {
        teacher
    } else {
        student + teacher
    }
}

/// A file named `name` in a scratch folder of its own; file and folder are removed when this
/// is dropped, whether the test passes or fails.
pub struct ScratchFile {
    path: std::path::PathBuf,
    _folder: tempfile::TempDir,
}

impl ScratchFile {
    /// The path, nothing written there yet.
    pub fn at(name: &str) -> ScratchFile {
        let folder = tempfile::Builder::new().prefix("recur-file-").tempdir().unwrap();
        ScratchFile { path: folder.path().join(name), _folder: folder }
    }

    /// `text` written as `name`; `name` is what errors about the file should quote.
    pub fn write(name: &str, text: &str) -> ScratchFile {
        let file = ScratchFile::at(name);
        std::fs::write(&file.path, text).unwrap();
        file
    }
}

impl std::ops::Deref for ScratchFile {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.path
    }
}

impl AsRef<std::path::Path> for ScratchFile {
    fn as_ref(&self) -> &std::path::Path {
        &self.path
    }
}
