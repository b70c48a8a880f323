//! Policy: per-tool RBAC (owned by the policy work; see issue 4).
