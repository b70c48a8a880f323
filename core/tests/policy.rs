//! Policy decisions and list visibility through the public API, on the three-principal example
//! policy that `docs/policy.md` walks through.

use mcp_policy_core::mcp::Method;
use mcp_policy_core::policy::{Decision, Kind, Mode, Policy, PolicySpec, Reason, Request, Verdict};
use mcp_policy_core::principal::{Principal, Source};
use serde_json::value::RawValue;
use serde_json::{json, Value};

const EXAMPLE: &str = r#"{
  "servers": {
    "github": {},
    "jira": { "mode": "audit" }
  },
  "rules": [
    {
      "id": "admins-everything",
      "effect": "allow",
      "principals": [{ "groups": ["admins"] }],
      "tools": ["*"], "resources": ["*"], "prompts": ["*"], "methods": ["*"]
    },
    {
      "id": "devs-read-tools",
      "effect": "allow",
      "servers": ["github"],
      "principals": [{ "groups": ["devs"] }],
      "tools": ["get_*", "list_*", "search_code"],
      "arguments": {
        "repo": { "patterns": ["acme/*"] },
        "limit": { "type": "integer", "maximum": 100, "optional": true }
      }
    },
    {
      "id": "devs-docs",
      "effect": "allow",
      "principals": [{ "groups": ["devs"] }],
      "resources": ["file:///docs/*"],
      "prompts": ["summarize"],
      "methods": ["completion/complete"]
    },
    {
      "id": "contractors-search",
      "effect": "allow",
      "principals": [{ "groups": ["contractors"], "claims": { "email_verified": [true] } }],
      "tools": ["search_code"]
    },
    {
      "id": "contractors-no-prompt-list",
      "effect": "deny",
      "principals": [{ "groups": ["contractors"] }],
      "methods": ["prompts/list"]
    },
    {
      "id": "nobody-deletes",
      "effect": "deny",
      "principals": [{}],
      "tools": ["delete_*"]
    },
    {
      "id": "no-force-push",
      "effect": "deny",
      "principals": [{}],
      "tools": ["push"],
      "arguments": { "/options/force": { "one_of": [true] } }
    },
    {
      "id": "anyone-status",
      "effect": "allow",
      "principals": [{}, { "anonymous": true }],
      "tools": ["status"],
      "methods": ["ping"]
    }
  ]
}"#;

fn policy() -> Policy {
    Policy::from_json(EXAMPLE.as_bytes()).unwrap_or_else(|e| panic!("{e:?}"))
}

fn who(subject: &str, groups: &[&str], claims: Value) -> Principal {
    let mut p = Principal::anonymous();
    p.source = Source::Jwt;
    p.subject = subject.into();
    p.issuer = "https://idp.acme.com".into();
    p.groups = groups.iter().map(|g| g.to_string()).collect();
    p.claims = claims.as_object().cloned().unwrap_or_default();
    p.normalize();
    p
}

fn admin() -> Principal {
    who("ada", &["admins", "staff"], json!({}))
}
fn dev() -> Principal {
    who("dan", &["devs"], json!({}))
}
fn contractor() -> Principal {
    who("cleo", &["contractors"], json!({ "email_verified": true }))
}

/// Names the visibility tests ask about: matched exactly, by pattern, denied, by URI, and none.
const NAMES: [&str; 8] = [
    "get_issue",
    "search_code",
    "delete_repo",
    "push",
    "status",
    "file:///docs/x",
    "summarize",
    "zzz",
];

/// One of each principal, and two devs who share a rule signature (the second is answered
/// from the first one's memo).
fn principals() -> [Principal; 6] {
    [
        admin(),
        dev(),
        who("dora", &["devs"], json!({})),
        contractor(),
        who("cleo", &["contractors"], json!({})),
        Principal::anonymous(),
    ]
}

fn raw(s: &str) -> Box<RawValue> {
    RawValue::from_string(s.to_owned()).unwrap()
}

fn call<'p>(p: &'p Policy, who: &Principal, server: &str, tool: &str, args: Option<&str>) -> Decision<'p> {
    let args = args.map(raw);
    p.decide(who, server, &Request::tool_call(tool, args.as_deref()))
}

fn method<'p>(p: &'p Policy, who: &Principal, server: &str, m: Method) -> Decision<'p> {
    p.decide(who, server, &Request::method(m))
}

#[test]
fn deny_wins_over_allow() {
    let p = policy();
    let d = call(&p, &admin(), "github", "delete_repo", Some("{}"));
    assert!(!d.allowed);
    assert_eq!(
        (d.verdict, d.rule_id, d.reason),
        (Verdict::Deny, Some("nobody-deletes"), Reason::DenyRule)
    );
    // The same admin may call anything else.
    let d = call(&p, &admin(), "github", "create_issue", Some("{}"));
    assert!(d.allowed);
    assert_eq!((d.rule_id, d.reason), (Some("admins-everything"), Reason::AllowRule));
}

#[test]
fn a_request_no_rule_allows_is_denied_by_default() {
    let p = policy();
    let d = call(&p, &contractor(), "github", "get_issue", Some(r#"{"repo":"acme/web"}"#));
    assert!(!d.allowed);
    assert_eq!((d.verdict, d.rule_id, d.reason), (Verdict::Deny, None, Reason::NoRule));
    assert!(!d.would_deny);
    assert_eq!(d.mode, Mode::Enforce);
}

#[test]
fn an_empty_policy_denies_everything_but_the_baseline() {
    let p = Policy::compile(PolicySpec::default()).unwrap();
    assert!(!call(&p, &admin(), "github", "anything", None).allowed);
    assert!(method(&p, &admin(), "github", Method::Initialize).allowed);
    assert!(!method(&p, &admin(), "github", Method::CompletionComplete).allowed);
}

#[test]
fn rules_scoped_to_one_server_do_not_apply_on_another() {
    let p = policy();
    let args = Some(r#"{"repo":"acme/web"}"#);
    assert!(call(&p, &dev(), "github", "get_issue", args).allowed);
    // Undeclared server: only "*" rules apply.
    let d = call(&p, &dev(), "slack", "get_issue", args);
    assert_eq!((d.allowed, d.reason), (false, Reason::NoRule));
    // "*" rules apply on every server, declared or not.
    assert!(call(&p, &contractor(), "slack", "search_code", None).allowed);
    assert!(p.declares_server("github") && !p.declares_server("slack"));
}

#[test]
fn protocol_baseline_is_allowed_to_authenticated_principals_only() {
    let p = policy();
    for m in [
        Method::Initialize,
        Method::Ping,
        Method::ServerDiscover,
        Method::Notification,
        Method::ClientResponse,
        Method::ToolsList,
        Method::ResourcesList,
        Method::ResourcesTemplatesList,
        Method::PromptsList,
    ] {
        let d = method(&p, &dev(), "github", m);
        let d_anon = method(&p, &Principal::anonymous(), "github", m);
        if m == Method::Ping {
            // The example has an explicit rule for ping; it decides before the baseline.
            assert_eq!((d.allowed, d.rule_id), (true, Some("anyone-status")));
            assert_eq!((d_anon.allowed, d_anon.rule_id), (true, Some("anyone-status")));
        } else {
            assert_eq!(
                (d.allowed, d.reason, d.rule_id),
                (true, Reason::Baseline, None),
                "{m:?}"
            );
            let d = d_anon;
            assert_eq!((d.allowed, d.reason), (false, Reason::NoRule), "{m:?}");
        }
    }
}

#[test]
fn a_deny_rule_can_take_a_baseline_method_away() {
    let p = policy();
    let d = method(&p, &contractor(), "github", Method::PromptsList);
    assert_eq!((d.allowed, d.rule_id), (false, Some("contractors-no-prompt-list")));
    assert!(method(&p, &contractor(), "github", Method::ToolsList).allowed);
}

#[test]
fn other_methods_need_a_rule() {
    let p = policy();
    let d = method(&p, &dev(), "github", Method::CompletionComplete);
    assert_eq!((d.allowed, d.rule_id), (true, Some("devs-docs")));
    assert!(!method(&p, &dev(), "github", Method::LoggingSetLevel).allowed);
    assert!(!method(&p, &dev(), "github", Method::TasksOther).allowed);
    assert!(!method(&p, &dev(), "github", Method::Other).allowed);
    // "*" covers every method without a subject, unknown ones included.
    for m in [
        Method::LoggingSetLevel,
        Method::TasksOther,
        Method::SubscriptionsListen,
        Method::Other,
    ] {
        assert!(method(&p, &admin(), "github", m).allowed, "{m:?}");
    }
}

#[test]
fn resources_and_prompts_are_judged_by_uri_and_name() {
    let p = policy();
    let d = dev();
    for m in [
        Method::ResourcesRead,
        Method::ResourcesSubscribe,
        Method::ResourcesUnsubscribe,
    ] {
        assert!(
            p.decide(&d, "github", &Request::resource(m, "file:///docs/a/b.md"))
                .allowed,
            "{m:?}"
        );
        assert!(
            !p.decide(&d, "github", &Request::resource(m, "file:///etc/passwd"))
                .allowed,
            "{m:?}"
        );
    }
    assert!(p.decide(&d, "github", &Request::prompt_get("summarize")).allowed);
    assert!(!p.decide(&d, "github", &Request::prompt_get("summarize2")).allowed);
}

#[test]
fn a_subject_method_without_a_subject_is_denied() {
    let p = policy();
    let d = p.decide(
        &admin(),
        "github",
        &Request {
            method: Method::ToolsCall,
            subject: None,
            arguments: None,
        },
    );
    assert_eq!((d.allowed, d.reason), (false, Reason::MissingSubject));
}

#[test]
fn argument_constraints_allow_one_call_and_block_another() {
    let p = policy();
    let d = call(
        &p,
        &dev(),
        "github",
        "get_issue",
        Some(r#"{"repo":"acme/web","number":7}"#),
    );
    assert_eq!((d.allowed, d.rule_id), (true, Some("devs-read-tools")));
    let d = call(&p, &dev(), "github", "get_issue", Some(r#"{"repo":"evil/web"}"#));
    assert!(!d.allowed);
    assert_eq!(
        (d.reason, d.rule_id, d.argument),
        (Reason::ArgumentsRejected, Some("devs-read-tools"), Some("repo"))
    );
}

#[test]
fn a_missing_constrained_argument_fails_the_constraint() {
    let p = policy();
    let d = call(&p, &dev(), "github", "get_issue", Some(r#"{"number":7}"#));
    assert_eq!((d.allowed, d.argument), (false, Some("repo")));
    let d = call(&p, &dev(), "github", "get_issue", None);
    assert_eq!((d.allowed, d.argument), (false, Some("repo")));
}

#[test]
fn an_optional_argument_may_be_absent_but_is_checked_when_present() {
    let p = policy();
    assert!(
        call(
            &p,
            &dev(),
            "github",
            "list_issues",
            Some(r#"{"repo":"acme/web","limit":100}"#)
        )
        .allowed
    );
    let d = call(
        &p,
        &dev(),
        "github",
        "list_issues",
        Some(r#"{"repo":"acme/web","limit":101}"#),
    );
    assert_eq!((d.allowed, d.argument), (false, Some("limit")));
}

#[test]
fn an_argument_of_the_wrong_type_fails_the_constraint() {
    let p = policy();
    let d = call(
        &p,
        &dev(),
        "github",
        "list_issues",
        Some(r#"{"repo":"acme/web","limit":"10"}"#),
    );
    assert_eq!((d.allowed, d.argument), (false, Some("limit")));
    let d = call(&p, &dev(), "github", "list_issues", Some(r#"{"repo":["acme/web"]}"#));
    assert_eq!((d.allowed, d.argument), (false, Some("repo")));
}

#[test]
fn a_rule_without_constraints_still_allows_when_another_rules_constraints_fail() {
    let p = policy();
    // Contractors' search rule has no constraints; a dev who is also a contractor gets through.
    let both = who("x", &["devs", "contractors"], json!({"email_verified": true}));
    let d = call(&p, &both, "github", "search_code", Some(r#"{"repo":"evil/x"}"#));
    assert_eq!((d.allowed, d.rule_id), (true, Some("contractors-search")));
}

#[test]
fn a_deny_rule_with_constraints_denies_only_the_calls_it_describes() {
    let p = policy();
    let d = call(&p, &admin(), "github", "push", Some(r#"{"options":{"force":true}}"#));
    assert_eq!((d.allowed, d.rule_id), (false, Some("no-force-push")));
    assert!(call(&p, &admin(), "github", "push", Some(r#"{"options":{"force":false}}"#)).allowed);
    assert!(call(&p, &admin(), "github", "push", Some("{}")).allowed);
    // Unreadable arguments make a deny rule apply: fail closed.
    let d = call(
        &p,
        &admin(),
        "github",
        "push",
        Some(r#"{"options":{"force":false,"force":true}}"#),
    );
    assert_eq!((d.allowed, d.rule_id), (false, Some("no-force-push")));
}

#[test]
fn the_claim_matcher_gates_a_rule() {
    let p = policy();
    let unverified = who("cleo", &["contractors"], json!({"email_verified": false}));
    assert!(call(&p, &contractor(), "github", "search_code", None).allowed);
    assert!(!call(&p, &unverified, "github", "search_code", None).allowed);
}

#[test]
fn the_anonymous_caller_gets_only_what_anonymous_rules_give() {
    let p = policy();
    let anon = Principal::anonymous();
    assert!(call(&p, &anon, "github", "status", None).allowed);
    assert!(!call(&p, &anon, "github", "search_code", None).allowed);
    assert!(!method(&p, &anon, "github", Method::Initialize).allowed);
}

#[test]
fn audit_mode_lets_a_denied_request_through_and_says_so() {
    let p = policy();
    assert_eq!(p.mode("jira"), Mode::Audit);
    let d = call(&p, &contractor(), "jira", "delete_board", None);
    assert!(d.allowed);
    assert!(d.would_deny);
    assert_eq!(
        (d.verdict, d.mode, d.rule_id),
        (Verdict::Deny, Mode::Audit, Some("nobody-deletes"))
    );
    // Allowed requests are not flagged.
    let d = call(&p, &contractor(), "jira", "search_code", None);
    assert_eq!((d.allowed, d.would_deny, d.verdict), (true, false, Verdict::Allow));
}

#[test]
fn the_first_applying_rule_in_document_order_is_reported() {
    let p = Policy::from_json(
        br#"{"rules":[
            {"id":"a","effect":"deny","principals":[{}],"tools":["x*"]},
            {"id":"b","effect":"deny","principals":[{}],"tools":["xy"]},
            {"id":"c","effect":"allow","principals":[{}],"tools":["xy"]},
            {"id":"d","effect":"allow","principals":[{}],"tools":["*"]}
        ]}"#,
    )
    .unwrap();
    assert_eq!(call(&p, &dev(), "s", "xy", None).rule_id, Some("a"));
    assert_eq!(call(&p, &dev(), "s", "yy", None).rule_id, Some("d"));
}

#[test]
fn lists_show_what_could_be_called_ignoring_argument_constraints() {
    let p = policy();
    let tools = [
        "get_issue",
        "list_issues",
        "search_code",
        "create_issue",
        "delete_repo",
        "push",
        "status",
    ];
    let shown = |who: &Principal, server: &str| -> Vec<&str> {
        tools
            .iter()
            .copied()
            .filter(|t| p.visible(who, server, Kind::Tool, t))
            .collect()
    };
    assert_eq!(
        shown(&dev(), "github"),
        ["get_issue", "list_issues", "search_code", "status"]
    );
    assert_eq!(shown(&contractor(), "github"), ["search_code", "status"]);
    // A deny rule with constraints (no-force-push) does not hide `push`; one without does.
    assert_eq!(
        shown(&admin(), "github"),
        [
            "get_issue",
            "list_issues",
            "search_code",
            "create_issue",
            "push",
            "status"
        ]
    );
    assert_eq!(shown(&dev(), "slack"), ["status"]);
}

#[test]
fn lists_are_not_filtered_in_audit_mode() {
    let p = policy();
    assert!(p.visible(&contractor(), "jira", Kind::Tool, "delete_board"));
    assert!(p.visible(&Principal::anonymous(), "jira", Kind::Prompt, "anything"));
}

#[test]
fn resources_templates_and_prompts_are_filtered_too() {
    let p = policy();
    assert!(p.visible(&dev(), "github", Kind::Resource, "file:///docs/a.md"));
    assert!(!p.visible(&dev(), "github", Kind::Resource, "file:///etc/passwd"));
    assert!(p.visible(&dev(), "github", Kind::ResourceTemplate, "file:///docs/{path}"));
    assert!(!p.visible(&dev(), "github", Kind::ResourceTemplate, "file:///{path}"));
    assert!(p.visible(&dev(), "github", Kind::Prompt, "summarize"));
    assert!(!p.visible(&contractor(), "github", Kind::Prompt, "summarize"));
    assert_eq!(
        Kind::of_list(Method::ResourcesTemplatesList),
        Some(Kind::ResourceTemplate)
    );
    assert_eq!(Kind::of_list(Method::ToolsCall), None);
}

#[test]
fn a_principal_view_agrees_with_direct_decisions() {
    let p = policy();
    let names = NAMES;
    let args = [
        None,
        Some("{}"),
        Some(r#"{"repo":"acme/a"}"#),
        Some(r#"{"options":{"force":true}}"#),
    ];
    for principal in principals() {
        for server in ["github", "jira", "slack"] {
            let view = p.for_principal(&principal, server);
            assert_eq!(view.mode(), p.mode(server));
            for name in names {
                for kind in [Kind::Tool, Kind::Resource, Kind::ResourceTemplate, Kind::Prompt] {
                    assert_eq!(
                        view.visible(kind, name),
                        p.visible(&principal, server, kind, name),
                        "{name} {kind:?}"
                    );
                }
                for a in args {
                    let a = a.map(raw);
                    let req = Request::tool_call(name, a.as_deref());
                    assert_eq!(view.decide(&req), p.decide(&principal, server, &req));
                }
            }
            for m in mcp_policy_core::mcp::Method::ALL {
                let req = Request::method(m);
                assert_eq!(view.decide(&req), p.decide(&principal, server, &req), "{m:?}");
            }
        }
    }
}

#[test]
fn the_version_ignores_formatting_key_order_and_spelled_out_defaults() {
    let a = Policy::from_json(br#"{"rules":[{"id":"r","effect":"allow","principals":[{}],"tools":["x"]}]}"#).unwrap();
    let b = Policy::from_json(
        br#"{ "mode": "enforce",
              "rules": [ { "tools": ["x"], "principals": [ {} ], "servers": ["*"], "effect": "allow", "id": "r" } ] }"#,
    )
    .unwrap();
    assert_eq!(a.version(), b.version());
    assert_eq!(a.version().len(), 16);
    assert!(a.version().bytes().all(|c| c.is_ascii_hexdigit()));
}

#[test]
fn the_version_changes_with_meaning_and_is_pinned_across_runs_and_toolchains() {
    let a = Policy::from_json(br#"{"rules":[{"id":"r","effect":"allow","principals":[{}],"tools":["x"]}]}"#).unwrap();
    let c = Policy::from_json(br#"{"rules":[{"id":"r","effect":"allow","principals":[{}],"tools":["y"]}]}"#).unwrap();
    assert_ne!(a.version(), c.version());
    // Pinned: if this changes, every deployed version string changes with it.
    assert_eq!(a.version(), PINNED_VERSION);
    assert_eq!(policy().version(), policy().version());
}

const PINNED_VERSION: &str = "609920d74ff352aa";

#[test]
fn decisions_borrow_rule_ids_from_the_policy() {
    let p = policy();
    let d = call(&p, &admin(), "github", "delete_x", None);
    let id: &str = d.rule_id.unwrap_or_default();
    assert_eq!(id, "nobody-deletes");
    assert_eq!(d.reason.label(), "deny_rule");
    assert_eq!(p.rule_count(), 8);
}

#[test]
fn every_json_example_in_the_reference_page_that_is_a_whole_policy_compiles() {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/policy.md")).unwrap();
    let mut compiled = 0;
    for block in page.split("```json\n").skip(1) {
        let json = block.split("```").next().unwrap_or_default();
        if json.trim_start().starts_with("{\n  \"mode\"") || json.contains("\"rules\"") {
            Policy::from_json(json.as_bytes()).unwrap_or_else(|e| panic!("docs/policy.md example: {e:?}\n{json}"));
            compiled += 1;
        }
    }
    assert!(compiled >= 1, "no whole-policy example found in docs/policy.md");
}

#[test]
fn remembered_visibility_answers_agree_with_the_index_and_never_cross_policies() {
    use mcp_policy_core::policy::seen;
    let p = policy();
    // The same rules with the effects of two swapped: same names, other answers.
    let other = Policy::from_json(
        EXAMPLE
            .replace(
                r#""id": "nobody-deletes",
      "effect": "deny""#,
                r#""id": "nobody-deletes",
      "effect": "allow""#,
            )
            .as_bytes(),
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    let names = NAMES;
    let principals = principals();
    seen::clear();
    for round in 0..3 {
        for policy in [&p, &other] {
            for principal in &principals {
                for server in ["github", "jira", "slack"] {
                    let view = policy.for_principal(principal, server);
                    for name in names {
                        for kind in [Kind::Tool, Kind::Resource, Kind::ResourceTemplate, Kind::Prompt] {
                            assert_eq!(
                                view.visible(kind, name),
                                view.visible_uncached(kind, name),
                                "round {round} {name} {kind:?} on {server}"
                            );
                        }
                    }
                }
            }
        }
    }
    assert!(seen::size().0 > 0, "the memo was used");
    // The swapped rule shows: one policy hides what the other shows, memo warm for both.
    let d = dev();
    assert!(!p.for_principal(&d, "github").visible(Kind::Tool, "delete_repo"));
    assert!(other.for_principal(&d, "github").visible(Kind::Tool, "delete_repo"));
}

#[test]
fn the_visibility_memo_is_bounded() {
    use mcp_policy_core::policy::seen;
    let p = policy();
    let d = dev();
    let view = p.for_principal(&d, "github");
    seen::clear();
    for i in 0..seen::MAX_NAMES + 10 {
        let name = format!("get_{i}");
        assert!(view.visible(Kind::Tool, &name));
        let (names, bytes) = seen::size();
        assert!(names <= seen::MAX_NAMES && bytes <= seen::MAX_BYTES);
    }
    assert!(seen::size().0 < seen::MAX_NAMES);
}

#[test]
fn lists_answered_as_a_whole_agree_with_each_name_and_are_keyed_by_view_kind_and_list() {
    use mcp_policy_core::policy::seen;
    let p = policy();
    let names = NAMES;
    let with_gaps: Vec<Option<&str>> = names.iter().map(|n| Some(*n)).chain([None]).collect();
    seen::clear();
    for round in 0..2 {
        for principal in principals() {
            for server in ["github", "jira", "slack"] {
                let view = p.for_principal(&principal, server);
                for kind in [Kind::Tool, Kind::Resource, Kind::ResourceTemplate, Kind::Prompt] {
                    let expected: Vec<bool> = with_gaps
                        .iter()
                        .map(|n| n.is_some_and(|n| view.visible_uncached(kind, n)))
                        .collect();
                    for list in [Some(7), Some(8), None] {
                        let got = view.visible_list(kind, list, with_gaps.iter().copied());
                        assert_eq!(got, expected, "round {round} {server} {kind:?} list {list:?}");
                    }
                }
            }
        }
    }
    let (lists, answers) = seen::list_size();
    assert!(lists > 0 && answers <= seen::MAX_NAMES);
}
