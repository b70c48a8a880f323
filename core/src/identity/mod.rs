//! Identity: establishing the principal (owned by the identity work; see issue 3).
