//! Duplicate-key and depth checks over a whole JSON document.
