use super::*;

#[test]
fn app_names_follow_the_regex() {
    for good in ["weather-bot", "ab", "a1", "my-big-data-app", "x9-y"] {
        assert!(valid_app_name(good), "{good}");
    }
    for bad in [
        "My_App",
        "a",
        "-ab",
        "ab-",
        "a--b",
        "1ab",
        "a-b",
        &"a".repeat(65),
    ] {
        assert!(!valid_app_name(bad), "{bad}");
    }
}

#[test]
fn client_id_prefixes() {
    assert_eq!(client_id_prefix("weather-bot"), "wb");
    assert_eq!(client_id_prefix("my-big-data-app"), "mbd");
    assert_eq!(client_id_prefix("chainview"), "ch");
}

#[test]
fn spiffe_segments() {
    assert!(valid_segment("A.b_c-9"));
    assert!(!valid_segment(".."));
    assert!(!valid_segment("bad id"));
    assert!(!valid_segment("a/b"));
}

#[test]
fn query_decoding() {
    assert_eq!(
        url_pairs("agent_id=spiffe%3A%2F%2Fx&limit=5&limit=7&a+b=c+d"),
        vec![
            ("agent_id".into(), "spiffe://x".into()),
            ("limit".into(), "5".into()),
            ("a b".into(), "c d".into())
        ]
    );
    assert_eq!(url_pairs("x=%zz%4"), vec![("x".into(), "%zz%4".into())]);
}
