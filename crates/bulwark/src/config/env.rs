//! `${VAR}` and `${VAR:-default}` references to the environment; `$$`
//! writes a literal `$`.

use std::collections::BTreeSet;

use serde_json::Value;

use super::Issue;

/// Where the environment is read from: the process's, or a test's.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Stands in for a `${...}` reference while the YAML is parsed.
const REFERENCE_TOKEN: &str = "__bulwark_env_";

/// Swaps each `${...}` for a plain token before parsing. `${VAR}` is not
/// valid YAML inside a flow mapping (`{ api_key: ${KEY} }`, braces being flow
/// syntax), yet that is the natural way to write it; and substituting values
/// before parsing would let a value change the YAML structure. Tokens are
/// replaced by their values after parsing, in [`interpolate`].
pub(crate) fn protect_references(text: &str) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len());
    let mut references = Vec::new();
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push_str("$$");
            rest = tail;
        } else if let Some(end) = after.strip_prefix('{').and_then(|body| body.find('}')) {
            out.push_str(&format!("{REFERENCE_TOKEN}{}__", references.len()));
            references.push(after[1..end + 1].to_string());
            rest = &after[end + 2..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    (out, references)
}

/// Puts the `${...}` references back into a string and substitutes them.
fn restore_references(s: &str, references: &[String]) -> String {
    let mut out = s.to_string();
    for (i, expr) in references.iter().enumerate().rev() {
        out = out.replace(&format!("{REFERENCE_TOKEN}{i}__"), &format!("${{{expr}}}"));
    }
    out
}

/// Substitutes the references in every string value. Returns the key paths
/// of the values that held one: only those may later be read as a number,
/// since the text a variable brings is all the YAML ever saw of it.
pub(crate) fn interpolate(
    value: &mut Value,
    references: &[String],
    env: Env<'_>,
    issues: &mut Vec<Issue>,
) -> BTreeSet<String> {
    let mut substituted = BTreeSet::new();
    walk(value, "", references, env, issues, &mut substituted);
    substituted
}

fn walk(
    value: &mut Value,
    path: &str,
    references: &[String],
    env: Env<'_>,
    issues: &mut Vec<Issue>,
    substituted: &mut BTreeSet<String>,
) {
    match value {
        Value::String(s) if s.contains('$') || s.contains(REFERENCE_TOKEN) => {
            if s.contains(REFERENCE_TOKEN) {
                substituted.insert(path.to_string());
            }
            match substitute(&restore_references(s, references), env) {
                Ok(new) => *s = new,
                Err(message) => issues.push(Issue {
                    path: path.to_string(),
                    message,
                }),
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let child = format!("{path}[{i}]");
                walk(item, &child, references, env, issues, substituted);
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                walk(item, &child, references, env, issues, substituted);
            }
        }
        _ => {}
    }
}

pub(crate) fn substitute(s: &str, env: Env<'_>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unclosed `${{` in `{s}`"))?;
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (expr, None),
            };
            match (env(name).filter(|v| !v.is_empty()), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(format!(
                        "environment variable {name} is not set (write ${{{name}:-default}} to make it optional)"
                    ));
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The number or boolean a substituted string spells, for a key that
/// wants one (`rpm: ${RPM}`).
pub(crate) fn as_scalar(text: &str) -> Option<Value> {
    let text = text.trim();
    if let Ok(n) = text.parse::<u64>() {
        return Some(Value::from(n));
    }
    if let Ok(n) = text.parse::<i64>() {
        return Some(Value::from(n));
    }
    if let Ok(b) = text.parse::<bool>() {
        return Some(Value::Bool(b));
    }
    text.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "KEY").then(|| "sk-test".into())
    }

    #[test]
    fn substitution_handles_defaults_and_escapes() {
        assert_eq!(
            substitute("${NOPE:-x}-$$-${KEY}", &env),
            Ok("x-$-sk-test".to_string())
        );
        assert!(substitute("${KEY", &env).is_err());
    }

    #[test]
    fn substituted_text_reads_as_the_scalar_it_spells() {
        assert_eq!(as_scalar("600"), Some(Value::from(600u64)));
        assert_eq!(as_scalar("-3"), Some(Value::from(-3i64)));
        assert_eq!(as_scalar("0.25"), Some(Value::from(0.25)));
        assert_eq!(as_scalar("true"), Some(Value::Bool(true)));
        assert_eq!(as_scalar("six hundred"), None);
    }
}
