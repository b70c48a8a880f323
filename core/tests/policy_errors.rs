//! Invalid policies are refused with every problem, each naming its path and reason.

use mcp_policy_core::policy::{Policy, PolicyError};

fn errors(doc: &str) -> Vec<PolicyError> {
    match Policy::from_json(doc.as_bytes()) {
        Ok(_) => panic!("policy was accepted:\n{doc}"),
        Err(e) => e,
    }
}

/// The single problem of a document, as `path: message`.
fn only(doc: &str) -> String {
    let e = errors(doc);
    assert_eq!(e.len(), 1, "{e:#?}");
    format!("{}: {}", e[0].path, e[0].message)
}

/// A document with one rule built from `fields` (id, effect and principals supplied).
fn rule(fields: &str) -> String {
    format!(r#"{{"servers":{{"github":{{}}}},"rules":[{{"id":"r","effect":"allow","principals":[{{}}],{fields}}}]}}"#)
}

#[test]
fn an_empty_pattern_is_refused_with_its_path() {
    let doc = r#"{"rules":[
        {"id":"a","effect":"allow","principals":[{}],"tools":["x"]},
        {"id":"b","effect":"allow","principals":[{}],"tools":["x"]},
        {"id":"c","effect":"allow","principals":[{}],"tools":[""],"resources":["ok",""],"prompts":[""]}
    ]}"#;
    let paths: Vec<_> = errors(doc).into_iter().map(|e| (e.path, e.message)).collect();
    assert_eq!(
        paths,
        [
            ("rules[2].tools[0]".to_owned(), "empty pattern".to_owned()),
            ("rules[2].resources[1]".to_owned(), "empty pattern".to_owned()),
            ("rules[2].prompts[0]".to_owned(), "empty pattern".to_owned()),
        ]
    );
}

#[test]
fn duplicate_rule_ids_are_refused_naming_the_first_use() {
    let doc = r#"{"rules":[
        {"id":"same","effect":"allow","principals":[{}],"tools":["x"]},
        {"id":"other","effect":"allow","principals":[{}],"tools":["x"]},
        {"id":"same","effect":"deny","principals":[{}],"tools":["y"]},
        {"id":"same","effect":"deny","principals":[{}],"tools":["z"]}
    ]}"#;
    let e = errors(doc);
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].path, "rules[2].id");
    assert_eq!(e[0].message, r#"duplicate rule id "same" (first used by rules[0])"#);
    assert_eq!(e[1].path, "rules[3].id");
    assert!(e[1].message.contains("rules[0]"));
}

#[test]
fn rule_ids_must_be_short_and_plain() {
    assert!(
        only(&rule(r#""tools":["x"]"#).replace(r#""id":"r""#, r#""id":"has space""#))
            .starts_with("rules[0].id: rule id must be")
    );
    assert!(only(&rule(r#""tools":["x"]"#).replace(r#""id":"r""#, r#""id":"""#)).starts_with("rules[0].id:"));
    let long = "x".repeat(129);
    assert!(
        only(&rule(r#""tools":["x"]"#).replace(r#""id":"r""#, &format!(r#""id":"{long}""#)))
            .starts_with("rules[0].id:")
    );
}

#[test]
fn a_rule_naming_an_undeclared_server_is_refused() {
    assert_eq!(
        only(&rule(r#""servers":["github","githb"],"tools":["x"]"#)),
        r#"rules[0].servers[1]: unknown server "githb": declare it under `servers` (or use "*")"#
    );
    assert!(only(&rule(r#""servers":[],"tools":["x"]"#)).starts_with("rules[0].servers: empty list"));
}

#[test]
fn declared_server_names_must_be_plain() {
    let e = errors(r#"{"servers":{"*":{},"bad name":{"mode":"audit"},"ok":{}}}"#);
    let paths: Vec<_> = e.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["servers.*", "servers.bad name"]);
}

#[test]
fn a_rule_must_name_principals_and_targets() {
    let e = errors(r#"{"rules":[{"id":"r","effect":"allow","principals":[]}]}"#);
    let got: Vec<_> = e.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        got,
        [
            "rules[0].principals: empty list matches nobody: use [{}] for every authenticated principal",
            "rules[0]: rule targets nothing: give tools, resources, prompts or methods",
        ]
    );
}

#[test]
fn principal_matcher_problems_carry_the_matcher_path() {
    let e = errors(&rule(
        r#""tools":["x"]}, {"id":"p","effect":"allow","tools":["x"],"principals":[{}, {"anonymous":true,"groups":["g"]}, {"scopes":[], "claims":{"/x~7":["a"], "tier":[{"nested":1}]}}]"#,
    ));
    let paths: Vec<_> = e.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "rules[1].principals[1].anonymous",
            "rules[1].principals[2].scopes",
            "rules[1].principals[2].claims./x~7",
            "rules[1].principals[2].claims.tier[0]",
        ]
    );
}

#[test]
fn methods_must_be_known_and_subject_free() {
    assert!(only(&rule(r#""methods":["logging/setlevel"]"#))
        .starts_with(r#"rules[0].methods[0]: unknown method "logging/setlevel""#));
    assert_eq!(
        only(&rule(r#""methods":["tools/call"]"#)),
        "rules[0].methods[0]: tools/call has a subject and is governed by `tools`, not `methods`"
    );
    assert!(only(&rule(r#""methods":["resources/read"]"#)).contains("governed by `resources`"));
    assert!(only(&rule(r#""methods":["prompts/get"]"#)).contains("governed by `prompts`"));
    assert!(only(&rule(r#""methods":["tasks/get"]"#)).contains(r#"use "tasks/*""#));
    assert!(only(&rule(r#""methods":["notifications/initialized"]"#)).contains(r#"use "notifications/*""#));
    Policy::from_json(rule(r#""methods":["*","tasks/*","notifications/*","completion/complete"]"#).as_bytes()).unwrap();
}

#[test]
fn argument_constraints_only_go_on_tool_only_rules() {
    let msg = "rules[0].arguments: argument constraints apply to tools/call only: the rule must target tools and nothing else";
    assert_eq!(
        only(&rule(r#""resources":["x"],"arguments":{"a":{"type":"string"}}"#)),
        msg
    );
    assert_eq!(
        only(&rule(
            r#""tools":["x"],"methods":["ping"],"arguments":{"a":{"type":"string"}}"#
        )),
        msg
    );
}

#[test]
fn bad_constraints_are_refused_with_the_argument_path() {
    let e = errors(&rule(
        r#""tools":["x"],"arguments":{"limit":{"minimum":10,"maximum":1},"/a~2":{"type":"string"},"q":{},"mode":{"one_of":[]}}"#,
    ));
    let paths: Vec<_> = e.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "rules[0].arguments./a~2",
            "rules[0].arguments.limit.minimum",
            "rules[0].arguments.mode.one_of",
            "rules[0].arguments.q"
        ]
    );
    assert_eq!(e[1].message, "minimum 10 is greater than maximum 1");
}

#[test]
fn every_problem_in_the_document_is_reported_at_once_in_document_order() {
    let doc = r#"{"servers":{"bad name":{}},"rules":[
        {"id":"ok","effect":"allow","principals":[{}],"tools":["x"]},
        {"id":"ok","effect":"allow","principals":[{"groups":[]}],"tools":[""],"servers":["nope"]},
        {"id":"z","effect":"deny","principals":[{}]}
    ]}"#;
    let got: Vec<_> = errors(doc).into_iter().map(|e| e.path).collect();
    assert_eq!(
        got,
        [
            "servers.bad name",
            "rules[1].servers[0]",
            "rules[1].principals[0].groups",
            "rules[1].tools[0]",
            "rules[1].id",
            "rules[2]",
        ]
    );
}

#[test]
fn an_unknown_field_is_reported_with_path_and_position() {
    let doc = "{\n  \"rules\": [\n    {\"id\": \"r\", \"effect\": \"allow\", \"principals\": [{}],\n     \"tool_name\": [\"x\"]}\n  ]\n}";
    let e = errors(doc);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].path, "rules[0].tool_name");
    assert!(
        e[0].message.starts_with("unknown field `tool_name`"),
        "{}",
        e[0].message
    );
    assert_eq!((e[0].line, e[0].column), (Some(4), Some(16)));
    assert!(e[0].to_string().ends_with("(line 4, col 16)"), "{}", e[0]);
}

#[test]
fn structural_problems_in_several_rules_are_all_reported() {
    let doc = r#"{"mode":"shadow","rules":[
        {"id":"a","effect":"permit","principals":[{}],"tools":["x"]},
        {"id":"b","effect":"allow","principals":[{}],"tools":["x"]},
        {"id":"c","effect":"allow","principals":[{"group":["g"]}],"tools":["x"]},
        {"id":"d","effect":"allow","principals":[{}],"tools":"x"}
    ]}"#;
    let e = errors(doc);
    let paths: Vec<_> = e.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "mode",
            "rules[0].effect",
            "rules[2].principals[0].group",
            "rules[3].tools"
        ]
    );
    // Only the error the parser stopped at has a position.
    assert!(e[0].line.is_some() && e[1].line.is_none());
}

#[test]
fn a_missing_required_field_names_the_rule() {
    let e = errors(r#"{"rules":[{"id":"a","principals":[{}],"tools":["x"]}]}"#);
    assert_eq!(e[0].path, "rules[0]");
    assert!(e[0].message.contains("missing field `effect`"), "{}", e[0].message);
}

#[test]
fn malformed_json_is_one_positioned_error() {
    let e = errors("{\"rules\": [,]}");
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].line, Some(1));
}

#[test]
fn errors_can_be_placed_under_an_embedding_document() {
    let e = errors(r#"{"rules":[{"id":"r","effect":"allow","principals":[{}],"tools":[""]}]}"#);
    let e = e.into_iter().next().unwrap().under("policy");
    assert_eq!(e.to_string(), "policy.rules[0].tools[0]: empty pattern");
    let root = PolicyError {
        path: String::new(),
        message: "m".into(),
        line: None,
        column: None,
    };
    assert_eq!(root.clone().to_string(), "(root): m");
    assert_eq!(root.under("policy").path, "policy");
}
