//! `docs/policy.schema.json` is generated from the policy types; this test keeps the committed
//! file in step with them. Regenerate with:
//!
//! ```text
//! UPDATE_SCHEMA=1 cargo test -p mcp-policy-core policy_schema
//! ```

use mcp_policy_core::policy::json_schema;
use std::path::PathBuf;

fn schema_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/policy.schema.json")
}

#[test]
fn policy_schema_matches_the_committed_file() {
    let generated = json_schema();
    let path = schema_path();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is out of date with the policy types.\nRegenerate it with:\n  UPDATE_SCHEMA=1 cargo test -p mcp-policy-core policy_schema\nand commit the result.",
        path.display()
    );
}

#[test]
fn policy_schema_accepts_the_documented_example_shape() {
    let schema: serde_json::Value = serde_json::from_str(&json_schema()).unwrap();
    let props = &schema["properties"];
    for field in ["mode", "servers", "rules"] {
        assert!(props.get(field).is_some(), "schema lacks {field}");
    }
    assert_eq!(schema["additionalProperties"], serde_json::json!(false));
}
