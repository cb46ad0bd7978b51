//! The chaos proxy (issue 5): not built yet.
//!
//! A placeholder so the workspace has the layout of `DESIGN.md`; it exports nothing.
