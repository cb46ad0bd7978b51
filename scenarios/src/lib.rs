//! The scenario runner (issue 6): not built yet.
//!
//! A placeholder so the workspace has the layout of `DESIGN.md`; it exports nothing.
