//! Per-principal list rewriting (tools/list, resources/list, prompts/list).
