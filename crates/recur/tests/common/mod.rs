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
