//! The embedded world's scenario files: errors named, a saved state loaded back the same.

use super::*;

#[test]
fn scenario_errors_name_the_place() {
    let bad: Scenario =
        serde_json::from_value(json!({"repositories": [{"repository": "nope", "images": []}]}))
            .unwrap();
    let e = bad.into_state("s.json").unwrap_err().to_string();
    assert!(e.starts_with("s.json: repositories[0]"), "{e}");
    let bad: Scenario = serde_json::from_value(
        json!({"repositories": [{"repository": REPO, "images": [{"tags": ["x"]}]}]}),
    )
    .unwrap();
    assert!(bad
        .into_state("s")
        .unwrap_err()
        .problem
        .contains("images[0]"));
    let twice: Scenario = serde_json::from_value(
        json!({"registry": [{"repository": REPO, "tag": "t"}, {"repository": REPO, "tag": "t"}]}),
    )
    .unwrap();
    assert!(twice.into_state("s").unwrap_err().problem.contains("twice"));
    assert!(
        serde_json::from_value::<Scenario>(json!({"repos": []})).is_err(),
        "unknown fields are refused"
    );
}

#[test]
fn a_saved_state_loads_back_the_same() {
    let w = world(vec![pinned("prod", "a")]);
    let saved = Scenario::from_state(
        &w.state(),
        Some("arn:aws:iam::123456789012:role/guard".into()),
    );
    let again = Memory::new(saved.clone().into_state("saved").unwrap());
    assert_eq!(again.state().repos, w.state().repos);
    assert_eq!(again.state().items, w.state().items);
}
