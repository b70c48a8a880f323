//! Any bytes as two backends' answers to a virtual server's `tools/list`: the merged answer is
//! valid JSON; every tool a lenient client reads in it carries a backend's prefix; none whose
//! backend name the caller may not see (here: names containing "secret") survives the merge.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_policy_core::policy::Kind;
use mcp_policy_core::vserver::merge::{self, Reply};
use mcp_policy_core::vserver::{Backend, VirtualServer, VirtualServerSpec};

fn vs() -> VirtualServer {
    let spec: VirtualServerSpec = serde_json::from_str(
        r#"{"backends": [{"name": "gh", "cluster": "a"}, {"name": "mem", "cluster": "b", "failure": "fail_open"}],
            "session_keys": [{"id": "k", "key": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}]}"#,
    )
    .expect("spec");
    VirtualServer::compile("vs", spec).expect("compiles")
}

fn reply(body: &[u8]) -> Reply<'_> {
    Reply {
        status: 200,
        content_type: Some(b"application/json"),
        body,
    }
}

fuzz_target!(|data: &[u8]| {
    let v = vs();
    let cut = data.first().map_or(0, |b| *b as usize).min(data.len().saturating_sub(1));
    let (a, b) = data.get(1..).unwrap_or_default().split_at(cut.min(data.len().saturating_sub(1)));
    let got = vec![
        (0, merge::classify(Ok(reply(a)), "1", false)),
        (1, merge::classify(Ok(reply(b)), "1", false)),
    ];
    let mut keep = |_: &Backend, _: Kind, n: &str| !n.contains("secret");
    let Ok(l) = merge::list(&v, Kind::Tool, got, &mut keep) else { return };
    let out: serde_json::Value = serde_json::from_slice(&l.result).expect("the merged result is JSON");
    let tools = out["tools"].as_array().expect("a tools array");
    for t in tools {
        let Some(name) = t.get("name").and_then(|n| n.as_str()) else { continue };
        let rest = name
            .strip_prefix("gh__")
            .or_else(|| name.strip_prefix("mem__"))
            .unwrap_or_else(|| panic!("{name:?} has no backend prefix"));
        assert!(!rest.contains("secret"), "{name:?} was hidden from the caller");
    }
});
