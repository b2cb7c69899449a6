//! A bad scenario is refused with every problem named as
//! `file: key.path: reason`, before any simulator starts.

use bulwark_drill::Scenario;

/// A valid two-phase scenario; each test breaks one thing in it.
const GOOD: &str = r#"
name: tiny
duration: 10m
primary: a
providers:
  a:
    format: anthropic
    models: [claude-sonnet-4-5]
    phases:
      - name: healthy
        until: 5m
      - name: failing
        errors:
          529: { share: 0.5, type: overloaded_error }
load:
  rps: 2
"#;

#[expect(
    clippy::expect_used,
    reason = "an assertion helper: a scenario that loads fails the test"
)]
fn problems(yaml: &str) -> String {
    Scenario::parse(yaml, "tiny.yaml")
        .expect_err("the scenario should be refused")
        .to_string()
}

#[test]
fn the_unbroken_scenario_is_accepted() {
    let scenario = Scenario::parse(GOOD, "tiny.yaml").unwrap();
    assert_eq!(scenario.providers["a"].phases.len(), 2);
}

#[test]
fn a_misspelt_fault_key_is_refused_not_ignored() {
    let text = problems(&GOOD.replace("        errors:", "        erors:"));
    assert!(text.contains("tiny.yaml: providers.a.phases[1]"), "{text}");
    assert!(text.contains("erors"), "{text}");
}

#[test]
fn shares_over_one_are_refused_with_their_sum() {
    let yaml = GOOD.replace(
        "529: { share: 0.5, type: overloaded_error }",
        "529: { share: 0.7, type: overloaded_error }\n          500: 0.6",
    );
    let text = problems(&yaml);
    assert!(text.contains("tiny.yaml: providers.a.phases[1]"), "{text}");
    assert!(text.contains("add up to 1.3"), "{text}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let yaml = GOOD
        .replace("until: 5m", "until: 20m")
        .replace("share: 0.5", "share: 1.5");
    let text = problems(&yaml);
    assert!(text.contains("2 problems found"), "{text}");
    assert!(
        text.contains("providers.a.phases[0].until: is past the end of the scenario"),
        "{text}"
    );
    assert!(text.contains("must be between 0 and 1, got 1.5"), "{text}");
}
