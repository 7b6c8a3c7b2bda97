use super::*;

fn err(text: &str) -> String {
    parse("t.chainview", text).unwrap_err().to_string()
}

const BASE: &str = "agent analyst orch=o task=t scope=read:data:*\n";

#[test]
fn parses_the_design_example() {
    let s = parse(
        "x",
        r#"title "CI/CD deployment runner"
app ceiling=read:config:*,read:deploy:*,write:deploy:*
agent orchestrator orch=deploy-pipeline task=release-v2.4.1 scope=read:config:*,read:deploy:*,write:deploy:*
agent analyst orch=deploy-pipeline task=review-v2.4.1 scope=read:config:*,read:deploy:*
agent deployer orch=deploy-pipeline task=push-v2.4.1 scope=write:deploy:*
say "Hop 1: the orchestrator hands the analyst a read-only slice"
delegate orchestrator -> analyst scope=read:config:production,read:deploy:web-service ttl=120 as=hop1
validate hop1
expect hop1 valid scope=read:config:production,read:deploy:web-service depth=1
delegate hop1 -> deployer scope=write:deploy:web-service ttl=60 as=hop2
expect hop2 denied 403 scope_violation
probe read:config:staging
expect permits orchestrator read:config:staging
expect denies hop1 read:config:staging
release orchestrator,analyst,deployer
expect orchestrator released   # trailing comment
wait 1.5s
revoke chain orchestrator
"#,
    )
    .unwrap();
    assert_eq!(s.steps.len(), 18);
    assert_eq!(s.title(), Some("CI/CD deployment runner"));
    assert!(s.needs_admin());
    assert_eq!(
        s.steps[10].kind,
        StepKind::Expect(Expectation::Denied {
            label: "hop2".into(),
            status: Some(403),
            code: Some("scope_violation".into()),
            detail: None,
        })
    );
    assert_eq!(s.steps[15].source, "expect orchestrator released");
    assert_eq!(
        s.steps[16].kind,
        StepKind::Wait(Duration::from_millis(1500))
    );
}

#[test]
fn misspelt_token_suggests_nearest() {
    assert_eq!(
        err(&format!("{BASE}validate analist")),
        "t.chainview:2:10: unknown token 'analist' — did you mean 'analyst'?"
    );
}

#[test]
fn misspelt_step_suggests_keyword() {
    assert_eq!(
        err("delegat a -> b scope=a:b:c as=x"),
        "t.chainview:1:1: unknown step 'delegat' — did you mean 'delegate'?"
    );
}

#[test]
fn label_used_before_defined() {
    assert_eq!(
        err("validate hop1\nagent hop1 scope=a:b:c"),
        "t.chainview:1:10: unknown token 'hop1' — no token is defined before line 1"
    );
}

#[test]
fn malformed_scope_points_at_the_scope() {
    assert_eq!(
        err("agent a scope=read:data:x,read:data"),
        "t.chainview:1:27: malformed scope 'read:data': expected action:resource:identifier (found only one colon)"
    );
}

#[test]
fn ttl_must_be_positive_integer() {
    assert_eq!(
        err(&format!(
            "{BASE}agent b scope=read:data:x\ndelegate analyst -> b scope=read:data:x ttl=-5 as=h"
        )),
        "t.chainview:3:45: ttl must be a positive whole number of seconds, got '-5'"
    );
    assert_eq!(
        err("agent a scope=a:b:c ttl=1.5"),
        "t.chainview:1:25: ttl must be a positive whole number of seconds, got '1.5'"
    );
}

#[test]
fn duplicate_label() {
    assert_eq!(
        err(&format!("{BASE}agent analyst scope=read:data:x")),
        "t.chainview:2:7: duplicate label 'analyst' (first defined on line 1)"
    );
}

#[test]
fn all_errors_are_reported() {
    let e = parse("t", "frobnicate\nvalidate nobody\n").unwrap_err();
    assert_eq!(e.0.len(), 2);
}

#[test]
fn unknown_option_suggests() {
    assert_eq!(
        err(&format!(
            "{BASE}agent b scope=read:data:x\ndelegate analyst -> b scpe=read:data:x as=h"
        )),
        "t.chainview:3:23: unknown option 'scpe=' — did you mean 'scope='?"
    );
}

#[test]
fn delegate_to_a_label_is_not_an_agent() {
    assert_eq!(
        err(&format!(
            "{BASE}agent b scope=read:data:x\ndelegate analyst -> b scope=read:data:x as=h\ndelegate analyst -> h scope=read:data:x as=h2"
        )),
        "t.chainview:4:21: 'h' is a delegated token, not an agent: name an agent defined with `agent`"
    );
}

#[test]
fn unterminated_string() {
    assert_eq!(
        err("say \"hello"),
        "t.chainview:1:5: unterminated string: expected a closing '\"'"
    );
}

#[test]
fn expectation_typos() {
    assert_eq!(
        err(&format!("{BASE}expect analyst valdi")),
        "t.chainview:2:16: unknown expectation 'valdi' (expected valid, invalid, released, revoked, expired, denied, or scope=/depth=/chain=/ttl=) — did you mean 'valid'?"
    );
    assert_eq!(
        err(&format!("{BASE}expect permit analyst read:data:x")),
        "t.chainview:2:8: unknown expectation 'permit' — did you mean 'permits'?"
    );
}

#[test]
fn bad_revoke_level_and_duration() {
    assert_eq!(
        err(&format!("{BASE}revoke tokn analyst")),
        "t.chainview:2:8: unknown revocation level 'tokn' (expected token, agent, task or chain) — did you mean 'token'?"
    );
    assert_eq!(
        err("wait soon"),
        "t.chainview:1:6: bad duration 'soon': expected a number with ms, s or m, like 2s"
    );
}

#[test]
fn empty_script() {
    assert_eq!(
        err("# only a comment\n\n"),
        "t.chainview:1:1: the script has no steps"
    );
}

/// `chainview language` names every step keyword.
#[test]
fn the_reference_names_every_step() {
    for kw in KEYWORDS {
        assert!(
            crate::scenario::REFERENCE
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{kw} "))),
            "{kw} missing from the reference"
        );
    }
}

#[test]
fn bad_spiffe_segment() {
    assert_eq!(
        err("agent a orch=bad/id scope=a:b:c"),
        "t.chainview:1:14: orch 'bad/id' is not a SPIFFE path segment: use letters, digits, '.', '-' and '_' (not '.' or '..')"
    );
}

/// The form and the parser share one rule per field: a label the form
/// refuses, the parser refuses with the same words (the form used to
/// accept `..`, which an exported scenario then failed to parse).
#[test]
fn form_and_parser_agree_on_names() {
    let e = err("agent .. orch=o scope=a:b:c");
    let rule = crate::scenario::rules::name("..").unwrap_err();
    assert!(e.ends_with(&rule), "{e} / {rule}");
}

proptest::proptest! {
    #[test]
    fn parse_never_panics(s in "(?s).{0,300}") {
        let _ = parse("p", &s);
    }

    #[test]
    fn parse_never_panics_on_plausible_lines(lines in proptest::collection::vec(
        proptest::prop_oneof![
            proptest::string::string_regex("(agent|delegate|expect|validate|revoke|wait|probe|say) [a-z =:,>\"*-]{0,40}").unwrap(),
            proptest::string::string_regex("[a-z]{1,8}( [a-z0-9=:,.*-]{1,12}){0,5}").unwrap(),
        ], 0..8)) {
        let _ = parse("p", &lines.join("\n"));
    }
}
