//! `mcp-policy` as a user runs it: the built binary, real files, exit codes and output.
//! The demo policy (`examples/demo/`) and an access log recorded from a real Envoy run of
//! `make run` (`tests/fixtures/demo-access.log`) are the inputs.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `mcp-policy` in the repository root: (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mcp-policy"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("mcp-policy runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn temp(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mcp-policy-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

#[test]
fn check_reports_every_problem_with_positions_and_hints() {
    let f = temp(
        "bad.json",
        "{\n  \"server\": \"demo\",\n  \"policy\": {\"servers\": {\"github\": {}}, \"rules\": [\n    {\"id\": \"a\", \"efect\": \"allow\", \"principals\": [{}], \"tools\": [\"x\"]},\n    {\"id\": \"b\", \"effect\": \"allow\", \"servers\": [\"githb\"], \"principals\": [{\"group\": [\"dev\"]}], \"tools\": [\"y\"]}\n  ]}\n}\n",
    );
    let (code, out, _) = run(&["check", f.to_str().expect("path")]);
    assert_eq!(code, 1, "{out}");
    let name = f.display().to_string();
    for want in [
        format!("{name}:4:"),
        "policy.rules[0].efect: unknown field `efect`".to_string(),
        "hint: did you mean `effect`?".to_string(),
        "policy.rules[1].principals[0].group: unknown field `group`".to_string(),
        "hint: did you mean `groups`?".to_string(),
        format!("{name}: refused (filter config):"),
    ] {
        assert!(out.contains(&want), "missing {want:?} in\n{out}");
    }
    let fixed = temp(
        "server-typo.json",
        r#"{"servers": {"github": {}}, "rules": [{"id": "b", "effect": "allow", "servers": ["githb"], "principals": [{}], "tools": ["y"]}]}"#,
    );
    let (code, out, _) = run(&["check", fixed.to_str().expect("path")]);
    assert_eq!(code, 1);
    assert!(
        out.contains("rules[0].servers[0]: unknown server \"githb\"") && out.contains("did you mean `github`?"),
        "{out}"
    );
}

#[test]
fn check_hints_at_yaml_and_never_reads_help_as_a_file() {
    let y = temp("policy.yaml", "rules:\n  - id: a\n    effect: allow\n");
    let (code, out, _) = run(&["check", y.to_str().expect("path")]);
    assert_eq!(code, 1);
    assert!(out.contains("this looks like YAML"), "{out}");
    let (code, out, _) = run(&["check", "--help"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("usage: mcp-policy check"), "{out}");
    let (code, _, err) = run(&["check", "--hlep"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown flag \"--hlep\" (did you mean --help?)"), "{err}");
    let (code, out, _) = run(&["check", "examples/demo/policy.json", "examples/xds/filter.json"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("examples/demo/policy.json: ok (policy; policy version "),
        "{out}"
    );
}

#[test]
fn explain_names_the_deciding_rule_and_the_others() {
    let (code, out, err) = run(&[
        "explain",
        "--policy",
        "examples/demo/policy.json",
        "--subject",
        "bob",
        "--group",
        "contractors",
        "--server",
        "demo",
        "--tool",
        "delete_branch",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("decision:  deny (enforce mode)"), "{out}");
    assert!(
        out.contains("because:   rule \"no-deletes-for-contractors\" denies it (deny wins)"),
        "{out}"
    );
    assert!(
        out.contains("- rules[1] \"contractors-read-tools\" (allow): does not apply: target does not match"),
        "{out}"
    );
    let (code, out, _) = run(&[
        "explain",
        "--policy",
        "examples/demo/policy.json",
        "--subject",
        "bob",
        "--group",
        "contractors",
        "--server",
        "sandbox",
        "--tool",
        "delete_branch",
    ]);
    assert_eq!(code, 0);
    assert!(
        out.contains("decision:  audit_deny (audit mode): passes now, refused once the server enforces"),
        "{out}"
    );
    let (code, _, err) = run(&["explain", "--policy", "examples/demo/policy.json", "--tool", "x"]);
    assert_eq!(code, 2);
    assert!(err.contains("say who is asking"), "{err}");
}

#[test]
fn test_passes_the_demo_suite_and_fails_a_wrong_expectation_with_a_diff() {
    let (code, out, _) = run(&["test", "examples/demo/policy-tests.yaml"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.ends_with("6 test(s): 6 passed, 0 failed\n"), "{out}");
    let policy = root().join("examples/demo/policy.json");
    let suite = temp(
        "wrong.yaml",
        &format!(
            "policy: {}\nprincipals:\n  contractor: {{subject: bob, groups: [contractors]}}\ntests:\n  - name: contractors may delete (wrong)\n    who: contractor\n    server: demo\n    tool: delete_branch\n    expect: allow\n  - name: contractor list (wrong)\n    who: contractor\n    server: demo\n    list: tools\n    offered: [echo, add, delete_branch]\n    visible: [echo, delete_branch]\n",
            policy.display()
        ),
    );
    let (code, out, _) = run(&["test", suite.to_str().expect("path")]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL contractors may delete (wrong)\n    tools/call delete_branch on demo as bob (jwt) groups [contractors]\n    - expected: allow\n    + actual:   deny by rule \"no-deletes-for-contractors\""), "{out}");
    assert!(
        out.contains(
            "      echo\n    + add   (visible, expected hidden)\n    - delete_branch   (expected visible, hidden)\n"
        ),
        "{out}"
    );
    assert!(out.ends_with("2 test(s): 0 passed, 2 failed\n"), "{out}");
}

#[test]
fn diff_shows_gains_losses_and_mode_changes() {
    let (code, out, _) = run(&[
        "diff",
        "examples/demo/policy.json",
        "examples/demo/policy-enforced.json",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("mode on sandbox: audit -> enforce"), "{out}");
    let narrower = temp(
        "narrower.json",
        &std::fs::read_to_string(root().join("examples/demo/policy.json"))
            .expect("policy")
            .replace(
                r#""tools": ["echo", "add", "search_*"]"#,
                r#""tools": ["echo", "search_*", "list_*"]"#,
            ),
    );
    let (code, out, _) = run(&["diff", "examples/demo/policy.json", narrower.to_str().expect("path")]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("caller with group contractors on demo:\n  + tools: list_*\n  - tools: add\n"),
        "{out}"
    );
    let (code, out, _) = run(&["diff", "examples/demo/policy.json", "examples/demo/policy.json"]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn replay_over_a_log_recorded_from_a_real_envoy_reports_what_enforcing_would_refuse() {
    let log = "cli/tests/fixtures/demo-access.log";
    let (code, out, err) = run(&["replay", "--log", log, "--policy", "examples/demo/policy.json"]);
    assert_eq!(code, 0, "the policy that made the log decides it alike: {out}{err}");
    assert!(out.contains(" 0 would change, 0 undetermined"), "{out}");
    let (code, out, _) = run(&["replay", "--log", log, "--policy", "examples/demo/policy-enforced.json"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("bob (groups contractors) on sandbox\n    tools/call delete_branch: audit_deny (rule \"no-deletes-for-contractors\") -> deny (rule \"no-deletes-for-contractors\")"),
        "{out}"
    );
    let (code, _, err) = run(&["replay", "--log", "nope.log", "--policy", "examples/demo/policy.json"]);
    assert_eq!(code, 2);
    assert!(err.contains("nope.log: cannot read"), "{err}");
}

#[test]
fn pin_record_out_writes_the_pins_file_atomically_and_equal_to_stdout() {
    let list = temp(
        "list.json",
        r#"{"jsonrpc": "2.0", "id": 1, "result": {"tools": [{"name": "get_forecast", "inputSchema": {"type": "object"}}]}}"#,
    );
    let l = list.to_str().expect("path");
    let (code, printed, err) = run(&["pin", "record", l]);
    assert_eq!(code, 0, "{err}");
    let dir = list.parent().expect("dir").join("pins-out");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let out = dir.join("demo.json");
    std::fs::write(&out, "old").expect("write");
    let (code, stdout, err) = run(&["pin", "record", l, "--out", out.to_str().expect("path")]);
    assert_eq!((code, stdout.as_str()), (0, ""), "{err}");
    let written = std::fs::read_to_string(&out).expect("written");
    assert_eq!(written, printed);
    let doc: serde_json::Value = serde_json::from_str(&written).expect("JSON");
    assert!(
        doc["pins"]["tools"]["get_forecast"]
            .as_str()
            .is_some_and(|p| p.starts_with("sha256:")),
        "{doc}"
    );
    let left: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left.len(), 1, "no temporary file left: {left:?}");
    // An unwritable place is an error naming it, and exit 2; diff takes no --out.
    let (code, _, err) = run(&["pin", "record", l, "--out", "/nonexistent/dir/demo.json"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--out /nonexistent/dir/demo.json"), "{err}");
    let (code, _, err) = run(&["pin", "diff", out.to_str().expect("path"), l, "--out", "x"]);
    assert_eq!(code, 2, "{err}");
    // diff reads the recorded file and a bare pins object alike.
    let (code, said, _) = run(&["pin", "diff", out.to_str().expect("path"), l]);
    assert_eq!((code, said.as_str()), (0, "no drift: every item matches its pin\n"));
    let bare = temp("bare-pins.json", &doc["pins"].to_string());
    let (code, said, _) = run(&["pin", "diff", bare.to_str().expect("path"), l]);
    assert_eq!((code, said.as_str()), (0, "no drift: every item matches its pin\n"));
    let other = temp("other-pins.json", r#"{"tools": {"get_forecast": "sha256:00"}}"#);
    let (code, said, _) = run(&["pin", "diff", other.to_str().expect("path"), l]);
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("changed tools \"get_forecast\""), "{said}");
}
