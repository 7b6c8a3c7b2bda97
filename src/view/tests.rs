use super::revoke_message;
use crate::scenario::report::Fate;

fn fate(label: &str, valid_after: Option<bool>, predicted_dead: bool, trail: bool) -> Fate {
    Fate {
        token: 0,
        label: label.into(),
        holder: String::new(),
        valid_after,
        predicted_dead,
        unsure: false,
        trail,
    }
}

/// Issue 26: never "0 tokens died ()": the prediction, the broker's
/// answers for the explorer's own tokens, the trail for the rest.
#[test]
fn a_prediction_names_the_tokens_that_may_already_have_been_dead() {
    let mut unsure = fate("other n7", None, true, true);
    unsure.unsure = true;
    let msg = revoke_message(&[fate("other n3", None, true, true), unsure]);
    assert!(
        msg.starts_with("✓ revoked: predicted 2 (other n3, other n7), of which 1 may already have been dead (the trail cannot settle other n7)"),
        "{msg}"
    );
}

#[test]
fn a_revocation_says_what_it_predicted_and_who_confirms_it() {
    assert_eq!(
        revoke_message(&[fate("a", Some(true), false, false)]),
        "✓ revoked: predicted 0 (no live token chainview shows is covered); the broker confirms your 1 live on"
    );
    assert_eq!(
        revoke_message(&[
            fate("a", Some(true), false, false),
            fate("other n3", None, true, true)
        ]),
        "✓ revoked: predicted 1 (other n3); the trail will confirm; the broker confirms your 1 live on"
    );
    assert_eq!(
        revoke_message(&[
            fate("a", Some(false), true, false),
            fate("other n3", None, true, true)
        ]),
        "✓ revoked: predicted 2 (a, other n3); the trail will confirm other n3; the broker confirms: 1 died (a), 0 live on"
    );
    assert_eq!(
        revoke_message(&[
            fate("a", Some(true), true, false),
            fate("b", Some(false), false, false)
        ]),
        "✓ revoked: predicted 1 (a); the broker says 1 died (b), 1 live on — differs from the rule chainview knows!"
    );
    let many: Vec<Fate> = (0..6)
        .map(|i| fate(&format!("t{i}"), None, true, true))
        .collect();
    assert_eq!(
        revoke_message(&many),
        "✓ revoked: predicted 6 (t0, t1, t2, +3 more); the trail will confirm"
    );
}
